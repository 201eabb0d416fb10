"""The per-tenant cap on active runs: submissions beyond it get 429 until runs end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.scripted import ScriptedHandler, scripted_type


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(
        deployment.replace(max_active_runs_per_tenant=2), redis, pg_pool, handlers=[ScriptedHandler()]
    ) as client:
        yield client


async def test_active_run_cap_per_tenant(api: Api) -> None:
    await api.create_workflow("slow", {"nodes": [{"id": "s", "type": "scripted", "config": {"sleep_s": 30}}]})
    first = await api.start_run("slow")
    await api.start_run("slow")
    refused = await api.request("POST", "/api/v1/runs", json={"workflow_id": "slow"})
    assert refused.status_code == 429 and "active runs" in refused.json()["error"]["message"]
    assert refused.headers["X-RateLimit-Limit"] == "2" and "Retry-After" in refused.headers
    other = await api.new_key(tenant="other")
    await api.create_workflow(
        "slow", {"nodes": [{"id": "s", "type": "scripted", "config": {"sleep_s": 30}}]}, key=other
    )
    assert (await api.request("POST", "/api/v1/runs", key=other, json={"workflow_id": "slow"})).status_code == 201
    # An ended run frees its slot (pruned lazily by the next submission).
    await api.request("POST", f"/api/v1/runs/{first['id']}/cancel")
    third = await api.request("POST", "/api/v1/runs", json={"workflow_id": "slow"})
    assert third.status_code == 201
    for run in (await api.request("GET", "/api/v1/runs")).json()["items"]:
        await api.request("POST", f"/api/v1/runs/{run['id']}/cancel")
