"""Dead-letters API over real dead letters made by the engine: list, show, replay (and its refusals), discard,
audit rows, tenant scoping, and 4xx for bad input."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.dead_letters import DeadLetter
from common.runs.messages import CompletionSignal
from tests.support.api import Api, running_api
from tests.support.dead_letters import FAST_DLQ, PoisonHandler, parked, poison_type, poisoned
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from tests.support.scripted import ScriptedHandler, scripted_type
from workers import Worker

BASE = "/api/v1/dead-letters"


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    with poison_type(), scripted_type():
        async with running_api(deployment.replace(**FAST_DLQ), redis, pg_pool, handlers=[PoisonHandler()]) as client:
            yield client


async def failed_run(api: Api, keys: Keys, redis: aioredis.Redis) -> tuple[str, DeadLetter]:
    """A run whose poisoned token was dead-lettered (and so whose node, then the run, failed)."""
    await api.create_workflow("poisoned", poisoned())
    run_id = (await api.start_run("poisoned"))["id"]
    assert (await api.wait_run(run_id))["status"] == "failed"
    [letter] = await parked(redis, keys, run_id)
    return run_id, letter


async def listed(api: Api, key: dict[str, str] | None = None, **params: Any) -> list[str]:
    """The ids of the first page of dead letters ``key`` (the bootstrap admin by default) sees."""
    response = await api.request("GET", BASE, key=key, params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def audit(api: Api, key: dict[str, str] | None = None, **params: Any) -> list[dict[str, Any]]:
    response = await api.request("GET", "/api/v1/audit", key=key, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_a_poisoned_token_is_listed_shown_refused_and_discarded(
    api: Api, keys: Keys, redis: aioredis.Redis
) -> None:
    run_id, letter = await failed_run(api, keys, redis)
    response = await api.request("GET", BASE)
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert response.json()["next_cursor"] is None
    assert (item["id"], item["kind"], item["run_id"], item["node_id"], item["token_id"], item["tenant_id"]) == (
        letter.id,
        "token",
        run_id,
        "p",
        "0:p:1",
        "default",
    )
    assert item["source"] == keys.shard_for(run_id).tasks("poison") and "delivered 2 times (limit 1)" in item["reason"]
    assert item["payload"]["token_id"] == "0:p:1" and item["by"].startswith("w-")
    assert (await api.request("GET", f"{BASE}/{letter.id}")).json() == item
    assert await listed(api, run_id=run_id, kind="token") == [letter.id]
    assert await listed(api, kind="signal") == await listed(api, run_id="other") == []

    refused = await api.request("POST", f"{BASE}/{letter.id}/replay")
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "run_ended" and "has ended (failed)" in error["message"]
    assert await audit(api) == []

    assert (await api.request("DELETE", f"{BASE}/{letter.id}")).status_code == 204
    assert (await api.request("GET", f"{BASE}/{letter.id}")).status_code == 404
    assert (await api.request("DELETE", f"{BASE}/{letter.id}")).status_code == 404
    [entry] = await audit(api)
    assert (entry["action"], entry["target"], entry["key_id"], entry["tenant_id"]) == (
        "dead_letter.discard",
        letter.id,
        "bootstrap",
        "default",
    )
    assert entry["detail"]["run_id"] == run_id and json.loads(entry["detail"]["payload"])["token_id"] == "0:p:1"


async def test_a_token_made_stale_by_a_resume_is_not_replayed(api: Api, keys: Keys, redis: aioredis.Redis) -> None:
    run_id, letter = await failed_run(api, keys, redis)
    resumed = await api.request("POST", f"/api/v1/runs/{run_id}/resume")
    assert resumed.status_code == 200, resumed.text
    refused = await api.request("POST", f"{BASE}/{letter.id}/replay")
    assert refused.status_code == 409, refused.text
    assert (
        refused.json()["error"]["code"] == "stale_epoch"
        and "resumed since (epoch 1" in refused.json()["error"]["message"]
    )
    assert (await api.request("GET", f"{BASE}/{letter.id}")).status_code == 200
    assert (await api.request("POST", f"/api/v1/runs/{run_id}/cancel")).status_code == 200


async def test_a_parked_token_of_a_live_run_is_replayed_and_runs(
    api: Api, deployment: Deployment, keys: Keys, redis: aioredis.Redis
) -> None:
    await api.create_workflow(
        "later", {"nodes": [{"id": "s", "type": "scripted", "config": {"output": 7}}], "edges": []}
    )
    run_id = (await api.start_run("later"))["id"]
    stream = keys.shard_for(run_id).tasks("scripted")
    [(entry_id, fields)] = await eventually(lambda: redis.xrange(stream))
    # As a worker of a release that cannot read the token parks it: the node is not failed, the run waits.
    parking = Worker(deployment.worker(), redis, [ScriptedHandler()])
    await parking.ensure_groups()
    await parking.dead_letter(stream, entry_id, fields, None, "malformed token")
    [letter] = await parked(redis, keys, run_id)
    assert await redis.xlen(stream) == 0

    # Two operators at once: one replays it, the other finds it gone.
    first, second = await asyncio.gather(*(api.request("POST", f"{BASE}/{letter.id}/replay") for _ in range(2)))
    assert sorted([first.status_code, second.status_code]) == [200, 404], (first.text, second.text)
    body = (first if first.status_code == 200 else second).json()
    assert (body["id"], body["kind"], body["target"]) == (letter.id, "token", stream) and body["entry_id"]
    assert (await api.request("GET", f"{BASE}/{letter.id}")).status_code == 404
    [(_, replayed)] = await redis.xrange(stream)
    assert replayed == fields
    [entry] = await audit(api, action="dead_letter.replay")
    assert entry["detail"]["target"] == stream and entry["detail"]["entry_id"] == body["entry_id"]

    upgraded = Worker(deployment.worker(), redis, [ScriptedHandler()])
    await upgraded.ensure_groups()
    async with upgraded:
        serving = asyncio.create_task(upgraded.run())
        try:
            assert (await api.wait_run(run_id))["status"] == "succeeded"
        finally:
            await upgraded.shutdown()
            await serving


async def test_a_signal_goes_back_to_the_coordinator(api: Api, keys: Keys, redis: aioredis.Redis) -> None:
    await api.create_workflow("one", {"nodes": [{"id": "a", "type": "noop", "config": {}}], "edges": []})
    run_id = (await api.start_run("one"))["id"]
    await api.wait_run(run_id)
    ghost = CompletionSignal(run_id=run_id, node_id="ghost", token_id="0:ghost:1", attempt=1, status="succeeded")
    inbox = keys.shard_for(run_id).completion_signals
    await redis.rpush(inbox, ghost.model_dump_json(exclude_none=True))
    [letter] = await parked(redis, keys, run_id)
    assert (letter.kind, letter.reason, letter.node_id) == ("signal", "no such node in the run's IR", "ghost")

    response = await api.request("POST", f"{BASE}/{letter.id}/replay")
    assert response.status_code == 200, response.text
    assert (response.json()["target"], response.json()["entry_id"]) == (inbox, None)
    # The coordinator took it again, and parked it again for the same reason.
    [again] = await parked(redis, keys, run_id)
    assert again.id != letter.id and again.payload == letter.payload


async def test_tenants_see_only_their_runs_dead_letters(api: Api, keys: Keys, redis: aioredis.Redis) -> None:
    _, letter = await failed_run(api, keys, redis)
    stray = DeadLetter.of_signal(
        keys.shard(0).completion_signals, json.dumps({"run_id": uuid.uuid4().hex}), "no such run", by="c"
    )
    stray_id = await redis.xadd(keys.dlq, stray.stored())
    outsider = await api.new_key(tenant="elsewhere", role="admin")
    admin = await api.new_key(role="admin")
    editor = await api.new_key(role="editor")

    assert await listed(api, outsider) == []
    for method, path in (("GET", ""), ("POST", "/replay"), ("DELETE", "")):
        response = await api.request(method, f"{BASE}/{letter.id}{path}", key=outsider)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    assert (await api.request("GET", BASE, key=editor)).status_code == 403
    assert (await api.request("DELETE", f"{BASE}/{letter.id}", key=editor)).status_code == 403
    # A tenant's admin sees its runs' letters; only the bootstrap admin sees one that names no known run.
    assert await listed(api, admin) == [letter.id]
    assert (await api.request("GET", f"{BASE}/{stray_id}", key=admin)).status_code == 404
    everything = (await api.request("GET", BASE)).json()["items"]
    assert [(i["id"], i["tenant_id"]) for i in everything] == [(stray_id, None), (letter.id, "default")]

    assert (await api.request("DELETE", f"{BASE}/{letter.id}", key=admin)).status_code == 204
    assert (await api.request("DELETE", f"{BASE}/{stray_id}")).status_code == 204
    assert await audit(api, key=outsider) == []
    # An action on a letter of no known run is the acting admin's tenant's.
    mine = await audit(api, key=admin)
    assert [(e["target"], e["key_id"] == "bootstrap") for e in mine] == [(stray_id, True), (letter.id, False)]


async def test_pages_run_newest_first(api: Api, keys: Keys, redis: aioredis.Redis) -> None:
    ids = [
        await redis.xadd(
            keys.dlq, DeadLetter.of_signal(keys.shard(0).completion_signals, "{}", f"r{i}", by=None).stored()
        )
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.request("GET", BASE, params=params)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", f"{BASE}/nonsense", {}, 422),
        ("GET", f"{BASE}/1-0", {}, 404),
        ("GET", f"{BASE}/\u0661-0", {}, 422),
        ("GET", f"{BASE}/1-0%0A", {}, 422),
        ("POST", f"{BASE}/1-x/replay", {}, 422),
        ("POST", f"{BASE}/99999999999-0/replay", {}, 404),
        ("DELETE", f"{BASE}/{'9' * 30}-0", {}, 422),
        ("DELETE", f"{BASE}/99999999999-0", {}, 404),
        ("GET", BASE, {"cursor": "garbage"}, 422),
        ("GET", BASE, {"kind": "bogus"}, 422),
        ("GET", BASE, {"limit": 0}, 422),
        ("GET", "/api/v1/audit", {"cursor": "%%%"}, 422),
        ("GET", "/api/v1/audit", {"limit": 1000}, 422),
    ],
)
async def test_bad_input_is_a_clear_4xx(api: Api, method: str, path: str, params: dict[str, Any], status: int) -> None:
    response = await api.request(method, path, params=params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] in ("validation_failed", "not_found") and error["message"]
