"""Notification subscriptions and their delivery log in Postgres."""

from __future__ import annotations

import secrets
import time
import uuid

import asyncpg

from common.notifications.models import TEST_EVENT, Delivery, Subscription, SubscriptionCreate
from common.secrets import Keyring

_COLUMNS = "id, tenant_id, workflow_id, events, channel, target, format, paused, created_by, created_at"
_SECRET_BYTES = 32
# A test event's id starts so: it cannot be mistaken for a stream entry id ("<ms>-<seq>") of a real event.
_TEST_ID_PREFIX = f"{TEST_EVENT}-"
# Queues a test unless one for the subscription still waits in the outbox (sending or retrying).
_ENQUEUE_TEST_SQL = """
INSERT INTO notification_outbox (subscription_id, event_id, payload)
SELECT $1, $2, $3::jsonb
WHERE NOT EXISTS (SELECT 1 FROM notification_outbox WHERE subscription_id = $1 AND starts_with(event_id, $4))
RETURNING event_id
"""


class NotificationStore:
    """The subscriptions of every tenant; a webhook's signing secret is generated here and stored encrypted."""

    def __init__(self, db: asyncpg.Pool | asyncpg.Connection, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring

    async def create(self, tenant_id: str, body: SubscriptionCreate, *, by: str | None) -> Subscription:
        """Store a subscription; a webhook's answer carries its signing secret, the only time it is shown.

        Raises ``SecretsUnavailable`` for a webhook when no secrets key is configured (the secret is kept encrypted).
        """
        secret = secrets.token_hex(_SECRET_BYTES) if body.channel == "webhook" else None
        secret_enc = self._keyring.encrypt(secret) if secret is not None else None
        row = await self._db.fetchrow(
            "INSERT INTO notification_subscriptions"
            " (id, tenant_id, workflow_id, events, channel, target, format, secret_enc, paused, created_by)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {_COLUMNS}",
            f"nsub_{uuid.uuid4().hex[:16]}",
            tenant_id,
            body.workflow_id,
            sorted(set(body.events)),
            body.channel,
            body.target,
            body.format,
            secret_enc,
            body.paused,
            by,
        )
        return Subscription(**dict(row), secret=secret)

    async def subscriptions(self, tenant_id: str) -> list[Subscription]:
        """The tenant's subscriptions, oldest first."""
        rows = await self._db.fetch(
            f"SELECT {_COLUMNS} FROM notification_subscriptions WHERE tenant_id = $1 ORDER BY created_at, id",
            tenant_id,
        )
        return [Subscription.model_validate(dict(row)) for row in rows]

    async def get(self, tenant_id: str, subscription_id: str) -> Subscription | None:
        """One subscription of the tenant, or None."""
        row = await self._db.fetchrow(
            f"SELECT {_COLUMNS} FROM notification_subscriptions WHERE tenant_id = $1 AND id = $2",
            tenant_id,
            subscription_id,
        )
        return None if row is None else Subscription.model_validate(dict(row))

    async def set_paused(self, tenant_id: str, subscription_id: str, paused: bool) -> Subscription | None:
        """Pause or resume a subscription; None when the tenant has no such subscription."""
        row = await self._db.fetchrow(
            f"UPDATE notification_subscriptions SET paused = $3 WHERE tenant_id = $1 AND id = $2 RETURNING {_COLUMNS}",
            tenant_id,
            subscription_id,
            paused,
        )
        return None if row is None else Subscription.model_validate(dict(row))

    async def delete(self, tenant_id: str, subscription_id: str) -> bool:
        """Delete a subscription with its pending deliveries and log; False when the tenant has none such."""
        status: str = await self._db.execute(
            "DELETE FROM notification_subscriptions WHERE tenant_id = $1 AND id = $2", tenant_id, subscription_id
        )
        return status.endswith(" 1")

    async def enqueue_test(self, subscription: Subscription, *, requested_by: str) -> str | None:
        """Queue a test event for ``subscription`` in the outbox the notifier sends every event from (so it is signed,
        retried and logged like any other); its event id, or None while an earlier test is still in the outbox."""
        event_id = f"{_TEST_ID_PREFIX}{uuid.uuid4().hex}"
        payload = {
            "id": event_id,
            "type": TEST_EVENT,
            "tenant_id": subscription.tenant_id,
            "run_id": None,
            "workflow_id": subscription.workflow_id,
            "node_id": None,
            "ts": int(time.time() * 1000),
            "data": {"subscription_id": subscription.id, "requested_by": requested_by},
        }
        queued: str | None = await self._db.fetchval(
            _ENQUEUE_TEST_SQL, subscription.id, event_id, payload, _TEST_ID_PREFIX
        )
        return queued

    async def deliveries(self, tenant_id: str, subscription_id: str, *, limit: int = 100) -> list[Delivery]:
        """The subscription's delivery attempts, newest first."""
        rows = await self._db.fetch(
            "SELECT d.* FROM notification_deliveries d JOIN notification_subscriptions s ON s.id = d.subscription_id"
            " WHERE s.tenant_id = $1 AND d.subscription_id = $2 ORDER BY d.id DESC LIMIT $3",
            tenant_id,
            subscription_id,
            limit,
        )
        return [Delivery.model_validate(dict(row)) for row in rows]
