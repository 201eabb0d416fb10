"""Quotas over whole run trees and per-tenant request limits (issue 14, quotas slice).

Each test here failed on 71f1ab0: child runs of ``workflow``/``loop``/``map`` nodes bypassed the tenant's
active-run cap and submission tiers, ``map`` took concurrency 1,000 and 100,000 items, and one tenant's keys
could use up the request budget every tenant shares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from tests.support.scripted import ScriptedHandler, scripted_type
from workers.control import control_handler

TENANT = "default"


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


def _quick() -> dict[str, Any]:
    return {"name": "quick", "nodes": [{"id": "q", "type": "scripted", "config": {"output": 1}}], "outputs": {"x": 1}}


def _slow() -> dict[str, Any]:
    return {"name": "slow", "nodes": [{"id": "s", "type": "scripted", "config": {"sleep_s": 30}}]}


def _map(body: dict[str, Any], items: Any, **config: Any) -> dict[str, Any]:
    """A workflow of one map node over ``items``."""
    return {"nodes": [{"id": "each", "type": "map", "config": {"items": items, "body": body, **config}}]}


StartApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start_api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[StartApi]:
    """Starts the API, engine and control worker with the settings given; they stop before Redis and Postgres."""
    async with AsyncExitStack() as stack:

        async def start(engine: bool = True, **settings: Any) -> Api:
            values = deployment.replace(control_sweep_interval_s=0.1, control_block_ms=100, **settings)
            handlers: list[Any] = []
            if engine:
                control = await stack.enter_async_context(control_handler(values.worker(), pg_pool, redis))
                handlers = [control, ScriptedHandler()]
            return await stack.enter_async_context(
                running_api(values, redis, pg_pool, engine=engine, handlers=handlers)
            )

        yield start


async def test_child_runs_count_against_the_tenant_active_run_cap(
    start_api: StartApi, redis: aioredis.Redis, keys: Keys
) -> None:
    api = await start_api(max_active_runs_per_tenant=3)
    await api.create_workflow("fan", _map(_slow(), [1, 2, 3, 4, 5], concurrency=5))
    root = await api.start_run("fan")
    # The root holds one slot; its map may start only two children, and waits (it has children in flight).
    await eventually(lambda: _started_children(redis, keys, root["id"], 2))
    active = keys.tenant_active_runs(TENANT)
    assert await redis.zcard(active) == 3
    refused = await api.request("POST", "/api/v1/runs", json={"workflow_id": "fan"})
    assert refused.status_code == 429, refused.text
    assert "active runs" in refused.json()["error"]["message"] and "Retry-After" in refused.headers
    assert await _running_children(redis, keys, root["id"]) == 2
    # Ending the tree frees every slot at once, not lazily at the next submission.
    await api.request("POST", f"/api/v1/runs/{root['id']}/cancel")

    async def freed() -> bool:
        return await redis.zcard(active) == 0

    await eventually(freed)


async def test_a_child_that_cannot_be_admitted_fails_its_node_instead_of_deadlocking(start_api: StartApi) -> None:
    # The root holds the only slot: its sub-workflow's child could wait for ever; it fails with quota_exceeded.
    api = await start_api(max_active_runs_per_tenant=1, child_admission_wait_s=0.3)
    await api.create_workflow("quick", _quick())
    await api.create_workflow("outer", {"nodes": [{"id": "sub", "type": "workflow", "config": {"workflow": "quick"}}]})
    run = await api.wait_run((await api.start_run("outer"))["id"])
    assert run["status"] == "failed", run
    assert "quota_exceeded" in str(run["error"]) and "active runs" in str(run["error"]), run


async def test_child_runs_count_against_the_submission_tiers(start_api: StartApi) -> None:
    api = await start_api(rate_runs_no_agents_per_min=3, child_admission_wait_s=0.3)
    await api.create_workflow("fan", _map(_quick(), [1, 2, 3, 4, 5], concurrency=1))
    run = await api.wait_run((await api.start_run("fan"))["id"])
    # The root and two children use the key's three no-agent submissions; the third child is refused.
    assert run["status"] == "failed", run
    assert "quota_exceeded" in str(run["error"]) and "no agents" in str(run["error"]), run
    refused = await api.request("POST", "/api/v1/runs", json={"workflow_id": "fan"})
    assert refused.status_code == 429 and "no agents" in refused.json()["error"]["message"], refused.text


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"concurrency": 1000}, "nodes[0].config.concurrency"),
        ({"max_items": 100_000}, "nodes[0].config.max_items"),
        ({"items": list(range(101))}, "nodes[0].config.items"),
    ],
)
async def test_map_limits_are_checked_when_a_definition_is_saved(
    start_api: StartApi, config: dict[str, Any], path: str
) -> None:
    api = await start_api(engine=False, max_map_concurrency=20, max_map_items=100)
    definition = _map(_quick(), **({"items": [1]} | config))
    response = await api.request("POST", "/api/v1/workflows", json={"name": "big", "definition": definition})
    assert response.status_code == 422 and path in response.text, response.text
    # The same map nested in an inline body is found too, and a loop's iterations are bounded likewise.
    nested = _map(definition | {"name": "inner"}, [1])
    response = await api.request("POST", "/api/v1/workflows", json={"name": "nested", "definition": nested})
    assert response.status_code == 422 and f"nodes[0].config.body.{path}" in response.text, response.text


async def test_loop_iterations_are_bounded_when_a_definition_is_saved(start_api: StartApi) -> None:
    api = await start_api(engine=False, max_loop_iterations=50)
    loop = {"body": _quick(), "until": "output.x == 1", "max_iterations": 10_000}
    definition = {"nodes": [{"id": "again", "type": "loop", "config": loop}]}
    response = await api.request("POST", "/api/v1/workflows", json={"name": "long", "definition": definition})
    assert response.status_code == 422 and "nodes[0].config.max_iterations" in response.text, response.text


async def test_map_items_from_data_are_bounded_at_run_time(start_api: StartApi) -> None:
    api = await start_api(max_map_items=100)
    await api.create_workflow("fan", _map(_quick(), "{{ inputs.xs }}"))
    run = await api.wait_run((await api.start_run("fan", {"xs": list(range(101))}))["id"])
    assert run["status"] == "failed", run
    assert "item count 101" in str(run["error"]) and "AOB_MAX_MAP_ITEMS" in str(run["error"]), run


async def test_one_tenant_cannot_use_up_the_request_budget_of_others(start_api: StartApi) -> None:
    api = await start_api(engine=False, rate_global_per_min=10_000, rate_key_per_min=1_000, rate_tenant_per_min=20)
    tenant_a = [await api.new_key(tenant="a") for _ in range(4)]
    tenant_b = await api.new_key(tenant="b")
    served = 0
    for attempt in range(100):
        response = await api.request("GET", "/api/v1/workflows", key=tenant_a[attempt % len(tenant_a)])
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
        served += 1
    assert served == 20, f"tenant a was served {served} requests with a per-tenant limit of 20"
    body = response.json()["error"]
    assert body["details"]["scope"] == "requests per tenant" and "per tenant" in body["message"], body
    assert int(response.headers["Retry-After"]) >= 1
    assert (await api.request("GET", "/api/v1/workflows", key=tenant_b)).status_code == 200


async def _started_children(redis: aioredis.Redis, keys: Keys, run_id: str, expected: int) -> bool:
    running = await _running_children(redis, keys, run_id)
    assert running >= expected, f"{running} children running, waiting for {expected}"
    return True


async def _running_children(redis: aioredis.Redis, keys: Keys, run_id: str) -> int:
    children = await redis.smembers(keys.child_runs(run_id))
    statuses = [await redis.hget(keys.run(child), "status") for child in children]
    return sum(1 for status in statuses if status == "running")
