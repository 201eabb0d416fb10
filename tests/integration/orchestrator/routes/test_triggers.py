"""Webhook triggers (issue 16): a signed delivery starts a run with mapped inputs; bearer secrets; bad signature,
stale timestamp, replay, oversize and non-JSON bodies refused with clear 4xx; rotation with two active secrets;
Idempotency-Key; per-trigger rate limit; the management API's roles."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from orchestrator._triggers_auth import signature
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment

GREETING = {
    "inputs": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "agent": {"type": "string"}},
        "required": ["city"],
    },
    "nodes": [{"id": "hello", "type": "transform", "config": {"output": {"msg": "hi {{ inputs.city }}"}}}],
    "edges": [],
}
MAPPING = {"city": "{{ body.place.name | upper }}", "agent": "{{ headers['user-agent'] }}"}


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment.replace(max_body_bytes=4096), redis, pg_pool) as client:
        await client.create_workflow("greet", GREETING)
        yield client


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    response = await api.request("POST", "/api/v1/triggers", json={"workflow": "greet", **fields})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliver(
    api: Api, trigger: dict[str, Any], payload: Any, secret: str, *, at: int | None = None, **headers: str
) -> Any:
    raw = json.dumps(payload).encode()
    stamp = str(int(time.time()) if at is None else at)
    signed = {"X-Aob-Timestamp": stamp, "X-Aob-Signature": signature(secret, stamp, raw)}
    return await api.client.post(
        trigger["hook_path"], content=raw, headers={"Content-Type": "application/json", **signed, **headers}
    )


def error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    return body


async def test_signed_delivery_starts_a_run_with_mapped_inputs(api: Api, pg_pool: asyncpg.Pool) -> None:
    trigger = await create(api, input_mapping=MAPPING, headers=["User-Agent"])
    assert trigger["auth"] == "hmac" and trigger["secret"].startswith("whsec_") and len(trigger["secrets"]) == 1
    listed = (await api.request("GET", "/api/v1/triggers")).json()["items"]
    assert [t["id"] for t in listed] == [trigger["id"]] and "secret" not in listed[0]
    assert "ciphertext" not in json.dumps(listed)

    response = await deliver(api, trigger, {"place": {"name": "Oslo"}}, trigger["secret"], **{"User-Agent": "gh/1"})
    assert response.status_code == 202, response.text
    run = await api.wait_run(response.json()["run_id"])
    assert run["status"] == "succeeded" and run["inputs"] == {"city": "OSLO", "agent": "gh/1"}
    assert run["outputs"] == {"hello": {"msg": "hi OSLO"}}
    stored = await pg_pool.fetchval("SELECT trigger_id FROM runs WHERE id = $1", run["id"])
    assert stored == trigger["id"]


async def test_refusals_are_clear(api: Api) -> None:
    trigger = await create(api)
    secret = trigger["secret"]
    good = {"city": "Rome"}

    assert error(await deliver(api, {"hook_path": "/api/v1/hooks/trg_nope"}, good, secret), 404)["code"] == "not_found"
    assert "does not match" in error(await deliver(api, trigger, good, "whsec_wrong"), 401)["message"]
    missing = await api.client.post(trigger["hook_path"], json=good)
    assert "X-Aob-Signature" in error(missing, 401)["message"]
    stale = error(await deliver(api, trigger, good, secret, at=int(time.time()) - 600), 401)
    assert stale["code"] == "stale_timestamp" and "600 s old" in stale["message"]
    ahead = error(await deliver(api, trigger, good, secret, at=int(time.time()) + 600), 401)
    assert ahead["code"] == "stale_timestamp" and "in the future" in ahead["message"]

    stamp = str(int(time.time()))
    raw = json.dumps(good).encode()
    headers = {"X-Aob-Timestamp": stamp, "X-Aob-Signature": signature(secret, stamp, raw)}
    assert (await api.client.post(trigger["hook_path"], content=raw, headers=headers)).status_code == 202
    assert error(await api.client.post(trigger["hook_path"], content=raw, headers=headers), 409)["code"] == "replayed"

    oversize = error(await deliver(api, trigger, {"city": "x" * 5000}, secret), 413)
    assert "at most 4096 bytes" in oversize["message"]
    stamp = str(int(time.time()))
    not_json = await api.client.post(
        trigger["hook_path"],
        content=b"city=Rome",
        headers={"X-Aob-Timestamp": stamp, "X-Aob-Signature": signature(secret, stamp, b"city=Rome")},
    )
    assert "expected a JSON object" in error(not_json, 422)["message"]
    invalid = error(await deliver(api, trigger, {"town": "Rome"}, secret), 422)
    assert invalid["code"] == "invalid_inputs"

    paused = await api.request("PATCH", f"/api/v1/triggers/{trigger['id']}", json={"paused": True})
    assert paused.status_code == 200 and paused.json()["paused"] is True, paused.text
    assert error(await deliver(api, trigger, {"city": "Paris"}, secret), 409)["code"] == "paused"


async def test_bearer_rotation_and_retirement(api: Api) -> None:
    trigger = await create(api, auth="bearer")
    hook = trigger["hook_path"]
    first = {"Authorization": f"Bearer {trigger['secret']}"}
    assert (await api.client.post(hook, json={"city": "Oslo"}, headers=first)).status_code == 202
    assert error(await api.client.post(hook, json={"city": "Oslo"}, headers={"Authorization": "Bearer no"}), 401)

    rotated = await api.request("POST", f"/api/v1/triggers/{trigger['id']}/rotate")
    assert rotated.status_code == 200 and len(rotated.json()["secrets"]) == 2, rotated.text
    second = {"Authorization": f"Bearer {rotated.json()['secret']}"}
    for headers in (first, second):
        assert (await api.client.post(hook, json={"city": "Oslo"}, headers=headers)).status_code == 202
    third = await api.request("POST", f"/api/v1/triggers/{trigger['id']}/rotate")
    assert error(third, 409)["code"] == "too_many_secrets"

    retired = await api.request("POST", f"/api/v1/triggers/{trigger['id']}/retire")
    assert retired.status_code == 200 and retired.json()["retired"] == 1, retired.text
    assert error(await api.client.post(hook, json={"city": "Oslo"}, headers=first), 401)
    assert (await api.client.post(hook, json={"city": "Oslo"}, headers=second)).status_code == 202


async def test_hmac_rotation_keeps_both_secrets_valid(api: Api) -> None:
    trigger = await create(api)
    rotated = (await api.request("POST", f"/api/v1/triggers/{trigger['id']}/rotate")).json()
    for secret in (trigger["secret"], rotated["secret"]):
        assert (await deliver(api, trigger, {"city": "Oslo"}, secret)).status_code == 202
    await api.request("POST", f"/api/v1/triggers/{trigger['id']}/retire")
    assert error(await deliver(api, trigger, {"city": "Oslo"}, trigger["secret"]), 401)
    assert (await deliver(api, trigger, {"city": "Rome"}, rotated["secret"])).status_code == 202


async def test_idempotency_key_and_rate_limit(api: Api) -> None:
    trigger = await create(api, auth="bearer", rate_per_min=3)
    headers = {"Authorization": f"Bearer {trigger['secret']}", "Idempotency-Key": "delivery-1"}
    first = await api.client.post(trigger["hook_path"], json={"city": "Oslo"}, headers=headers)
    again = await api.client.post(trigger["hook_path"], json={"city": "Oslo"}, headers=headers)
    assert first.status_code == again.status_code == 202, again.text
    assert first.json()["run_id"] == again.json()["run_id"] and again.json()["replayed"] is True
    other = await api.client.post(trigger["hook_path"], json={"city": "Rome"}, headers=headers)
    assert error(other, 409)["code"] == "idempotency_conflict"
    limited = await api.client.post(trigger["hook_path"], json={"city": "Oslo"}, headers=headers)
    assert "deliveries per" in error(limited, 429)["message"]


async def test_management_roles_and_validation(api: Api) -> None:
    viewer = await api.new_key(role="viewer")
    refused = await api.request("POST", "/api/v1/triggers", key=viewer, json={"workflow": "greet"})
    assert error(refused, 403)
    bad = await api.request(
        "POST",
        "/api/v1/triggers",
        json={"workflow": "greet", "input_mapping": {"a": "{{ body."}, "headers": ["Cookie"]},
    )
    assert error(bad, 422)
    assert error(await api.request("POST", "/api/v1/triggers", json={"workflow": "nope"}), 404)
    trigger = await create(api, version=1)
    bad_patch = await api.request("PATCH", f"/api/v1/triggers/{trigger['id']}", json={"headers": ["Authorization"]})
    assert "carry credentials" in error(bad_patch, 422)["message"]
    unpinned = await api.request("PATCH", f"/api/v1/triggers/{trigger['id']}", json={"version": None})
    assert unpinned.json()["version"] is None and unpinned.json()["paused"] is False, unpinned.text
    assert (await api.request("GET", f"/api/v1/triggers/{trigger['id']}", key=viewer)).status_code == 200
    assert (await api.request("DELETE", f"/api/v1/triggers/{trigger['id']}")).status_code == 204
    assert error(await deliver(api, trigger, {"city": "Oslo"}, trigger["secret"]), 404)


async def test_hmac_needs_the_secrets_keyring(deployment: Deployment, redis: aioredis.Redis, pg_pool: Any) -> None:
    async with running_api(deployment.replace(secrets_keys=""), redis, pg_pool, engine=False) as api:
        await api.create_workflow("greet", GREETING)
        refused = await api.request("POST", "/api/v1/triggers", json={"workflow": "greet"})
        assert error(refused, 409)["code"] == "secrets_unavailable"
        assert (await api.request("POST", "/api/v1/triggers", json={"workflow": "greet", "auth": "bearer"})).is_success
