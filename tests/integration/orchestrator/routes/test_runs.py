"""Runs API: submit and execute, inputs schema, idempotency, lists, cancel, resume, blobs, tenant isolation."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from tests.support.scripted import ScriptedHandler, scripted_type


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(
        deployment.replace(inline_output_max_bytes=64), redis, pg_pool, handlers=[ScriptedHandler()]
    ) as client:
        yield client


GREETING = {
    "inputs": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"],
    },
    "nodes": [
        {"id": "hello", "type": "transform", "config": {"output": {"msg": "hi {{ inputs.city }}"}}},
        {"id": "done", "type": "noop"},
    ],
    "edges": [{"from": "hello", "to": "done"}],
}


def scripted(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "scripted", "config": config}


def chain_of(*nodes: dict[str, Any]) -> dict[str, Any]:
    ids = [n["id"] for n in nodes]
    return {"nodes": list(nodes), "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)]}


async def test_run_executes_and_reports_nodes(api: Api) -> None:
    workflow = await api.create_workflow("greet", GREETING)
    run = await api.start_run("greet", {"city": "Oslo"})
    assert run["workflow_id"] == workflow["id"] and run["version"] == 1 and run["inputs"] == {"city": "Oslo"}
    ended = await api.wait_run(run["id"])
    assert ended["status"] == "succeeded" and ended["ir_version"] == 1
    hello = ended["nodes"]["hello"]
    assert hello["status"] == "succeeded" and hello["output"] == {"msg": "hi Oslo"} and hello["attempt"] == 1
    assert hello["queue_ms"] is not None and hello["started_at"] and hello["ended_at"]
    assert ended["started_at"] and ended["ended_at"]


async def test_inputs_are_validated_against_the_schema(api: Api) -> None:
    await api.create_workflow("greet", GREETING)
    response = await api.request("POST", "/api/v1/runs", json={"workflow_id": "greet", "inputs": {"days": 0}})
    assert response.status_code == 422
    paths = {d["path"] for d in response.json()["error"]["details"]}
    assert paths == {"inputs", "inputs.days"}  # missing city, days below its minimum


async def test_unknown_workflow_or_version_is_404(api: Api) -> None:
    missing = await api.request("POST", "/api/v1/runs", json={"workflow_id": "nope"})
    assert missing.status_code == 404
    await api.create_workflow("w", chain_definition(1))
    no_version = await api.request("POST", "/api/v1/runs", json={"workflow_id": "w", "version": 7})
    assert no_version.status_code == 404


async def test_idempotency_key_replays_and_conflicts(api: Api) -> None:
    await api.create_workflow("w", chain_definition(1))
    body = {"workflow_id": "w", "inputs": {"a": 1}}
    headers = {"Idempotency-Key": "k-1"}
    first = await api.request("POST", "/api/v1/runs", json=body, headers=headers)
    again = await api.request("POST", "/api/v1/runs", json=body, headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    other = await api.request("POST", "/api/v1/runs", json={**body, "inputs": {"a": 2}}, headers=headers)
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"


async def test_twenty_concurrent_submissions_with_one_key_make_one_run(api: Api, pg_pool: asyncpg.Pool) -> None:
    await api.create_workflow("w", chain_definition(1))
    body = {"workflow_id": "w", "inputs": {}}
    responses = await asyncio.gather(
        *(api.request("POST", "/api/v1/runs", json=body, headers={"Idempotency-Key": "same"}) for _ in range(20))
    )
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM runs") == 1


async def test_list_runs_filters_and_paginates(api: Api) -> None:
    await api.create_workflow("a", chain_definition(1))
    await api.create_workflow("b", chain_definition(1))
    ids = [(await api.start_run(name))["id"] for name in ("a", "a", "b")]
    for run_id in ids:
        await api.wait_run(run_id)
    page = (await api.request("GET", "/api/v1/runs", params={"limit": 2})).json()
    rest = (await api.request("GET", "/api/v1/runs", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    assert sorted(r["id"] for r in page["items"] + rest["items"]) == sorted(ids)
    only_a = (await api.request("GET", "/api/v1/runs", params={"workflow": "a"})).json()["items"]
    assert sorted(r["id"] for r in only_a) == sorted(ids[:2])

    async def recorded() -> bool:
        listed = (await api.request("GET", "/api/v1/runs", params={"status": "succeeded"})).json()["items"]
        return len(listed) == 3

    await eventually(recorded)
    assert (await api.request("GET", "/api/v1/runs", params={"status": "bogus"})).status_code == 422


async def test_cancel_running_run_then_409(api: Api) -> None:
    await api.create_workflow("slow", chain_of(scripted("wait", sleep_s=30)))
    run = await api.start_run("slow")
    cancelled = await api.request("POST", f"/api/v1/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await api.request("POST", f"/api/v1/runs/{run['id']}/cancel")
    assert again.status_code == 409


async def test_resume_reruns_only_the_failed_node_and_its_successors(api: Api) -> None:
    # "flaky" fails its first attempt (the upstream is down), then recovers: resuming runs it and "down" again.
    definition = chain_of(scripted("up", output=1), scripted("flaky", fail_attempts=1, output=2), scripted("down"))
    await api.create_workflow("flaky", definition)
    run = await api.start_run("flaky")
    failed = await api.wait_run(run["id"])
    assert failed["status"] == "failed" and failed["nodes"]["flaky"]["status"] == "failed"
    assert "down" not in failed["nodes"] or failed["nodes"]["down"]["status"] != "succeeded"
    resumed = await api.request("POST", f"/api/v1/runs/{run['id']}/resume", json={})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["resumed_nodes"] == ["flaky", "down"]
    done = await api.wait_run(run["id"])
    assert done["status"] == "succeeded"
    assert done["nodes"]["up"]["attempt"] == 1 and done["nodes"]["flaky"]["attempt"] == 2
    assert api.engine is not None
    assert (await api.engine.event_types(run["id"], "up")).count("node_succeeded") == 1
    assert "run_resumed" in await api.engine.event_types(run["id"])
    succeeded = await api.request("POST", f"/api/v1/runs/{run['id']}/resume")
    assert succeeded.status_code == 409
    replay = await api.request("POST", f"/api/v1/runs/{run['id']}/resume", json={"from_node": "down"})
    assert replay.status_code == 200 and replay.json()["resumed_nodes"] == ["down"]
    unknown = await api.request("POST", f"/api/v1/runs/{run['id']}/resume", json={"from_node": "zz"})
    assert unknown.status_code in (409, 422)


async def test_resume_of_running_run_is_409(api: Api) -> None:
    await api.create_workflow("slow", chain_of(scripted("wait", sleep_s=30)))
    run = await api.start_run("slow")
    response = await api.request("POST", f"/api/v1/runs/{run['id']}/resume", json={})
    assert response.status_code == 409
    await api.request("POST", f"/api/v1/runs/{run['id']}/cancel")


async def test_large_output_is_a_cas_ref_readable_as_a_blob_by_its_tenant_only(api: Api) -> None:
    big = {"items": ["x" * 50] * 10}
    await api.create_workflow("big", chain_of(scripted("make", output=big)))
    run = await api.start_run("big")
    ended = await api.wait_run(run["id"])
    ref = ended["nodes"]["make"]["output_ref"]
    assert ref.startswith("cas://sha256:") and ended["nodes"]["make"]["output"] is None
    digest = ref.removeprefix("cas://sha256:")

    async def readable() -> bool:
        return (await api.request("GET", f"/api/v1/blobs/{digest}")).status_code == 200

    await eventually(readable)
    assert (await api.request("GET", f"/api/v1/blobs/{digest}")).json() == big
    other = await api.new_key(tenant="other")
    assert (await api.request("GET", f"/api/v1/blobs/{digest}", key=other)).status_code == 404
    assert (await api.request("GET", "/api/v1/blobs/not-a-digest")).status_code == 422


async def test_run_definition_and_other_tenant_isolation(api: Api) -> None:
    await api.create_workflow("w", chain_definition(2))
    run = await api.start_run("w")
    definition = (await api.request("GET", f"/api/v1/runs/{run['id']}/definition")).json()
    assert definition["ir_version"] == 1 and [n["id"] for n in definition["definition"]["nodes"]] == ["n0", "n1"]
    other = await api.new_key(tenant="other")
    for method, path in (
        ("GET", f"/api/v1/runs/{run['id']}"),
        ("GET", f"/api/v1/runs/{run['id']}/definition"),
        ("GET", f"/api/v1/runs/{run['id']}/patches"),
        ("POST", f"/api/v1/runs/{run['id']}/cancel"),
        ("POST", f"/api/v1/runs/{run['id']}/resume"),
    ):
        assert (await api.request(method, path, key=other)).status_code == 404, path
    assert (await api.request("GET", "/api/v1/runs", key=other)).json()["items"] == []
    started = await api.request("POST", "/api/v1/runs", key=other, json={"workflow_id": "w"})
    assert started.status_code == 404


async def test_archived_workflow_runs_stay_readable(api: Api) -> None:
    await api.create_workflow("w", chain_definition(1))
    run = await api.start_run("w")
    await api.wait_run(run["id"])
    await api.request("DELETE", "/api/v1/workflows/w")
    assert (await api.request("GET", f"/api/v1/runs/{run['id']}")).status_code == 200
    assert (await api.request("POST", "/api/v1/runs", json={"workflow_id": "w"})).status_code == 404
