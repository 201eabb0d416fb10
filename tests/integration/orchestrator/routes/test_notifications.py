"""``POST /api/v1/notifications/subscriptions/{id}/test``: a test event queued in the notifier's outbox (its
sending is in tests/integration/coordinator/test_notifications.py), one at a time, for editors of the tenant."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment

SUBSCRIPTIONS = "/api/v1/notifications/subscriptions"


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    # No notifier runs: a queued test stays in the outbox.
    async with running_api(deployment, redis, pg_pool, engine=False) as client:
        yield client


async def _subscription(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"channel": "email", "address": "ops@example.com", "events": ["run_failed"]} | fields
    response = await api.request("POST", SUBSCRIPTIONS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_test_is_queued_once_until_sent(api: Api, pg_pool: asyncpg.Pool) -> None:
    sub = await _subscription(api, paused=True, workflow_id="wf-1")
    path = f"{SUBSCRIPTIONS}/{sub['id']}/test"
    queued = await api.request("POST", path)
    assert queued.status_code == 202, queued.text
    body = queued.json()
    assert body["subscription_id"] == sub["id"] and body["event_type"] == "test"
    assert body["event_id"].startswith("test-")
    payload = await pg_pool.fetchval(
        "SELECT payload FROM notification_outbox WHERE subscription_id = $1 AND event_id = $2",
        sub["id"],
        body["event_id"],
    )
    assert payload["type"] == "test" and payload["id"] == body["event_id"] and payload["workflow_id"] == "wf-1"
    assert payload["run_id"] is None and payload["data"]["subscription_id"] == sub["id"]

    again = await api.request("POST", path)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "test_pending"
    # A real event waiting for the same subscription does not hold a test back, and the test is audited once.
    await pg_pool.execute("DELETE FROM notification_outbox WHERE subscription_id = $1", sub["id"])
    await pg_pool.execute(
        "INSERT INTO notification_outbox (subscription_id, event_id, payload) VALUES ($1, '1-0', '{}')", sub["id"]
    )
    assert (await api.request("POST", path)).status_code == 202
    audited = await pg_pool.fetchval(
        "SELECT count(*) FROM audit_log WHERE action = 'notification.test' AND target = $1", sub["id"]
    )
    assert audited == 2


async def test_send_test_roles_and_tenants(api: Api) -> None:
    sub = await _subscription(api)
    path = f"{SUBSCRIPTIONS}/{sub['id']}/test"
    viewer = await api.new_key(role="viewer")
    refused = await api.request("POST", path, key=viewer)
    assert refused.status_code == 403, refused.text
    other = await api.new_key(tenant="other")
    assert (await api.request("POST", path, key=other)).status_code == 404
    assert (await api.request("POST", f"{SUBSCRIPTIONS}/nsub_missing/test")).status_code == 404
    assert (await api.request("POST", f"{SUBSCRIPTIONS}/{'x' * 65}/test")).status_code == 422
    editor = await api.new_key(role="editor")
    assert (await api.request("POST", path, key=editor)).status_code == 202
