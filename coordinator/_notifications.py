"""Notifications: turn tenant-stream events into deliveries, and send the deliveries that are due.

Two halves, each shared by every coordinator. The consumer group ``notifier`` reads the tenant streams and, for
each event a subscription wants, inserts one ``notification_outbox`` row per (subscription, event) — the primary
key makes an event delivered once per subscription however often it is read. The sender claims due rows with
``FOR UPDATE SKIP LOCKED`` (a lease: a coordinator dying mid-send leaves the row to be tried again), sends, and
logs each attempt in ``notification_deliveries``; failures are retried with exponential backoff until
``AOB_NOTIFY_RETRY_MAX_S`` after the first attempt.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.notifications import EVENT_TYPES, Sender
from common.notifications.send import Outcome
from common.periodic import PeriodicTask
from common.secrets import Keyring, SecretsUnavailable
from common.settings import CoordinatorSettings
from common.streams import Batch, StreamConsumer

logger = logging.getLogger(__name__)

NOTIFIER_GROUP = "notifier"
_SEND_BATCH = 50
_ENQUEUE_SQL = """
INSERT INTO notification_outbox (subscription_id, event_id, payload)
SELECT id, $4, $5::jsonb FROM notification_subscriptions
WHERE tenant_id = $1 AND NOT paused AND $2 = ANY (events) AND (workflow_id IS NULL OR workflow_id = $3)
  AND created_at <= to_timestamp($6::double precision / 1000)
ON CONFLICT DO NOTHING
"""
# Claiming moves the row's next attempt past the lease, so a peer does not send it too while this one does.
_CLAIM_SQL = """
UPDATE notification_outbox o
SET attempt = o.attempt + 1, next_attempt_at = now() + make_interval(secs => $2)
FROM notification_subscriptions s
WHERE s.id = o.subscription_id AND (o.subscription_id, o.event_id) IN (
    SELECT subscription_id, event_id FROM notification_outbox WHERE next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING o.subscription_id, o.event_id, o.payload, o.attempt,
    extract(epoch FROM now() - o.first_at) AS age_s, s.channel, s.target, s.format, s.secret_enc
"""
_LOG_SQL = """
INSERT INTO notification_deliveries
    (subscription_id, event_id, event_type, run_id, attempt, status, response_code, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


class Notifier:
    """Delivers notifications until ``shutdown()``; ``send_due()`` sends what is due once (tests call it too)."""

    def __init__(
        self,
        settings: CoordinatorSettings,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        keys: Keys,
        *,
        consumer: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self._redis = redis
        self._keys = keys
        self._keyring = Keyring.from_settings(settings)
        self._sender = Sender(settings)
        self._consumer = StreamConsumer(
            redis,
            name="notifier",
            group=NOTIFIER_GROUP,
            consumer=consumer,
            streams=self._tenant_streams,
            handler=self._handle_batch,
            metrics=metrics,
            # The tenant list is read as often as the outbox: a tenant created after this started (`aob up` starts
            # coordinators before the API makes the default tenant) is notified within a poll, not 30 s later.
            refresh_s=settings.notify_poll_s,
        )
        self._sending = PeriodicTask(self.send_due, settings.notify_poll_s, retry=self._consumer.retry, stage="send")

    async def run(self) -> None:
        """Consume the tenant streams and send due deliveries until ``shutdown``."""
        await asyncio.gather(self._consumer.run(), self._sending.run())

    async def shutdown(self) -> None:
        """Stop reading and sending; idempotent. A delivery cut short is sent again once its lease ends."""
        await self._consumer.shutdown()
        await self._sending.shutdown()
        await self._sender.aclose()

    async def _tenant_streams(self) -> list[str]:
        tenants = [row["id"] for row in await self.pool.fetch("SELECT id FROM tenants ORDER BY id")]
        return [stream for t in tenants for stream in self._keys.tenant_events(t)]

    async def _handle_batch(self, batch: Batch) -> None:
        tenant = self._keys.tenant_of_feed(batch.stream)
        events = [
            (entry_id, event)
            for entry_id, fields in batch.entries
            if fields and (event := orjson.loads(fields["e"])).get("type") in EVENT_TYPES
        ]
        if events:
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, event in events:
                    pipe.hget(self._keys.run(event["run_id"]), "workflow_id")
                workflows = await pipe.execute()
            rows = [
                (
                    tenant,
                    event["type"],
                    workflow,
                    entry_id,
                    self._payload(tenant, entry_id, event, workflow),
                    event["ts"],
                )
                for (entry_id, event), workflow in zip(events, workflows, strict=True)
            ]
            await self.pool.executemany(_ENQUEUE_SQL, rows)
        await self._consumer.ack(batch.stream, [entry_id for entry_id, _ in batch.entries])

    def _payload(self, tenant: str, entry_id: str, event: dict[str, Any], workflow: str | None) -> dict[str, Any]:
        payload = {
            "id": entry_id,
            "type": event["type"],
            "tenant_id": tenant,
            "run_id": event["run_id"],
            "workflow_id": workflow,
            "node_id": event.get("node_id"),
            "ts": event["ts"],
            "data": event.get("data", {}),
        }
        if event["type"].startswith("approval_"):
            payload["link"] = f"{self.settings.notify_ui_base_url.rstrip('/')}/#/approvals"
        return payload

    async def send_due(self) -> int:
        """Send every delivery now due (up to a batch); returns how many were attempted."""
        lease_s = self.settings.notify_timeout_s * 3
        rows = await self.pool.fetch(_CLAIM_SQL, _SEND_BATCH, lease_s)
        await asyncio.gather(*(self._deliver(row) for row in rows))
        return len(rows)

    async def _deliver(self, row: asyncpg.Record) -> None:
        payload: dict[str, Any] = row["payload"]
        outcome = await self._attempt(row, payload)
        attempt: int = row["attempt"]
        delay_s = min(self.settings.notify_retry_base_s * 2 ** (attempt - 1), self.settings.notify_retry_max_s)
        retrying = not outcome.delivered and outcome.retryable
        if retrying and float(row["age_s"]) + delay_s > self.settings.notify_retry_max_s:
            retrying = False
        status = "delivered" if outcome.delivered else "retrying" if retrying else "failed"
        key = (row["subscription_id"], row["event_id"])
        async with self.pool.acquire() as conn, conn.transaction():
            if retrying:
                await conn.execute(
                    "UPDATE notification_outbox SET next_attempt_at = now() + make_interval(secs => $3)"
                    " WHERE subscription_id = $1 AND event_id = $2",
                    *key,
                    delay_s,
                )
            else:
                await conn.execute("DELETE FROM notification_outbox WHERE subscription_id = $1 AND event_id = $2", *key)
            await conn.execute(
                _LOG_SQL,
                *key,
                payload["type"],
                payload["run_id"],
                attempt,
                status,
                outcome.response_code,
                outcome.error,
            )
        logger.info(
            "notification %s of event %s to subscription %s, attempt %d: %s%s",
            payload["type"],
            row["event_id"],
            row["subscription_id"],
            attempt,
            status,
            f" ({outcome.error})" if outcome.error else "",
        )

    async def _attempt(self, row: asyncpg.Record, payload: dict[str, Any]) -> Outcome:
        if row["channel"] == "email":
            return await self._sender.email(row["target"], payload)
        try:
            secret = self._keyring.decrypt(row["secret_enc"])
        except SecretsUnavailable as exc:
            return Outcome(False, error=f"cannot decrypt the signing secret: {exc.message}", retryable=False)
        return await self._sender.webhook(row["target"], secret, payload, row["format"])
