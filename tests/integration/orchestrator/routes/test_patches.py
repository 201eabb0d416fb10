"""Runtime patches through the API: added nodes run in the same run; refusals say why; no lost update."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from tests.support.scripted import ScriptedHandler, scripted_type


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment.replace(max_agents=1), redis, pg_pool, handlers=[ScriptedHandler()]) as c:
        yield c


# "first" finishes at once; "slow" runs long enough to be patched while running; "after" waits behind it.
DEFINITION = {
    "nodes": [
        {"id": "first", "type": "noop"},
        {"id": "slow", "type": "scripted", "config": {"sleep_s": 3.0, "output": {"n": 21}}},
        {"id": "after", "type": "noop"},
    ],
    "edges": [{"from": "first", "to": "slow"}, {"from": "slow", "to": "after"}],
}


def add_node(node_id: str, source: str, node: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [
        {"op": "add", "path": "/nodes/-", "value": node or {"id": node_id, "type": "noop"}},
        {"op": "add", "path": "/edges/-", "value": {"from": source, "to": node_id}},
    ]


async def started_run(api: Api) -> str:
    await api.create_workflow("p", DEFINITION)
    run_id: str = (await api.start_run("p"))["id"]

    async def slow_running() -> bool:
        nodes = (await api.request("GET", f"/api/v1/runs/{run_id}")).json()["nodes"]
        return bool(nodes.get("slow", {}).get("status") == "running")

    await eventually(slow_running)
    return run_id


async def test_added_node_downstream_of_running_node_executes(api: Api) -> None:
    run_id = await started_run(api)
    double = {"id": "double", "type": "transform", "config": {"output": "{{ nodes.slow.output.n * 2 }}"}}
    response = await api.request(
        "POST", f"/api/v1/runs/{run_id}/patch", json={"ops": add_node("double", "slow", double), "reason": "more"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["ir_version"] == 2 and response.json()["added_nodes"] == ["double"]
    ended = await api.wait_run(run_id)
    assert ended["status"] == "succeeded" and ended["ir_version"] == 2
    assert ended["nodes"]["double"]["output"] == 42
    definition = (await api.request("GET", f"/api/v1/runs/{run_id}/definition")).json()
    assert definition["ir_version"] == 2 and "double" in [n["id"] for n in definition["definition"]["nodes"]]
    patches = (await api.request("GET", f"/api/v1/runs/{run_id}/patches")).json()["items"]
    assert [(p["from_version"], p["to_version"], p["reason"]) for p in patches] == [(1, 2, "more")]
    assert patches[0]["author"] == "key:bootstrap"
    late = await api.request("POST", f"/api/v1/runs/{run_id}/patch", json={"ops": add_node("x", "after")})
    assert late.status_code == 409 and late.json()["error"]["code"] == "run_ended"


async def test_invalid_patches_are_refused_with_reasons(api: Api) -> None:
    run_id = await started_run(api)
    url = f"/api/v1/runs/{run_id}/patch"
    bad_op = await api.request("POST", url, json={"ops": [{"op": "replace", "path": "/nodes/9/type", "value": "x"}]})
    assert bad_op.status_code == 422 and "ops[0]" in bad_op.json()["error"]["message"]
    cycle = [{"op": "add", "path": "/edges/-", "value": {"from": "after", "to": "first"}}]
    cyclic = await api.request("POST", url, json={"ops": cycle})
    assert cyclic.status_code in (409, 422)
    assert "first" in cyclic.json()["error"]["message"]
    agents = [
        *add_node("a1", "after", {"id": "a1", "type": "agent", "config": {"prompt": "p"}}),
        *add_node("a2", "after", {"id": "a2", "type": "agent", "config": {"prompt": "p"}}),
    ]
    too_many = await api.request("POST", url, json={"ops": agents})
    assert too_many.status_code == 422 and "too many agent nodes" in too_many.json()["error"]["message"]
    touch_done = [{"op": "add", "path": "/nodes/0/name", "value": "renamed"}]
    finished = await api.request("POST", url, json={"ops": touch_done})
    assert finished.status_code == 409, finished.text
    assert "'first' is succeeded" in finished.json()["error"]["message"]
    touch_running = [{"op": "remove", "path": "/edges/1"}]
    running = await api.request("POST", url, json={"ops": touch_running})
    assert running.status_code == 409 and "'slow' is running" in running.json()["error"]["message"]
    unknown_field = await api.request("POST", url, json={"ops": add_node("z", "slow"), "bogus": 1})
    assert unknown_field.status_code == 422 and "bogus" in unknown_field.json()["error"]["message"]
    pending_change = [{"op": "add", "path": "/nodes/2/name", "value": "still pending"}]
    assert (await api.request("POST", url, json={"ops": pending_change})).status_code == 200
    assert (await api.wait_run(run_id))["status"] == "succeeded"


async def test_concurrent_patches_never_lose_an_update(api: Api) -> None:
    run_id = await started_run(api)
    url = f"/api/v1/runs/{run_id}/patch"
    responses = await asyncio.gather(
        *(api.request("POST", url, json={"ops": add_node(f"extra{i}", "slow")}) for i in range(4))
    )
    codes = [r.status_code for r in responses]
    assert set(codes) <= {200, 409}
    applied = [r.json() for r in responses if r.status_code == 200]
    assert applied
    definition = (await api.request("GET", f"/api/v1/runs/{run_id}/definition")).json()
    node_ids = {n["id"] for n in definition["definition"]["nodes"]}
    # Every patch that answered 200 is in the current definition: none was overwritten by another.
    for body in applied:
        assert set(body["added_nodes"]) <= node_ids
    assert definition["ir_version"] == 1 + len(applied)
    ended = await api.wait_run(run_id)
    for body in applied:
        assert ended["nodes"][body["added_nodes"][0]]["status"] == "succeeded"


@pytest.mark.parametrize("crash_after_swap", [True, False])
async def test_a_crash_in_the_middle_of_a_patch_leaves_postgres_and_redis_agreeing(
    api: Api, monkeypatch: pytest.MonkeyPatch, crash_after_swap: bool
) -> None:
    import orchestrator.routes.patches as route

    run_id = await started_run(api)
    real_patch_run = route.patch_run

    async def dies(*args: Any, **kwargs: Any) -> Any:
        # The API process dies just after (or just before) swapping the IR in Redis, before Postgres commits.
        if crash_after_swap:
            await real_patch_run(*args, **kwargs)
        raise ConnectionError("the API process died here")

    with monkeypatch.context() as patched:
        patched.setattr(route, "patch_run", dies)
        with pytest.raises(ConnectionError):
            await api.request("POST", f"/api/v1/runs/{run_id}/patch", json={"ops": add_node("lost", "slow")})
    response = await api.request("POST", f"/api/v1/runs/{run_id}/patch", json={"ops": add_node("next", "slow")})
    assert response.status_code == 200, response.text
    expected = ["lost", "next"] if crash_after_swap else ["next"]
    assert response.json()["ir_version"] == 1 + len(expected)
    definition = (await api.request("GET", f"/api/v1/runs/{run_id}/definition")).json()
    added = [n["id"] for n in definition["definition"]["nodes"] if n["id"] in ("lost", "next")]
    assert added == expected and definition["ir_version"] == 1 + len(expected)
    ended = await api.wait_run(run_id)
    assert ended["status"] == "succeeded" and sorted(set(ended["nodes"]) & {"lost", "next"}) == expected
    patches = (await api.request("GET", f"/api/v1/runs/{run_id}/patches")).json()["items"]
    assert [p["to_version"] for p in patches] == list(range(2, 2 + len(expected)))
