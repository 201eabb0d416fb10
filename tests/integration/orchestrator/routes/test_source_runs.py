"""``GET /api/v1/schedules/{id}/runs`` and ``GET /api/v1/triggers/{id}/runs``: the latest runs a schedule or a
trigger started, newest first, only theirs, only in the caller's tenant."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from coordinator import Scheduler
from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually


async def _runs(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    response = await api.request("GET", path, params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _newest_first(items: list[dict[str, Any]]) -> bool:
    stamps = [(item["created_at"], item["id"]) for item in items]
    return stamps == sorted(stamps, reverse=True)


async def test_schedule_runs(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        created = await api.request(
            "POST", "/api/v1/schedules", json={"workflow": "w", "interval_s": 1, "overlap": "allow"}
        )
        schedule = created.json()
        path = f"/api/v1/schedules/{schedule['id']}/runs"
        assert await _runs(api, path) == []
        by_hand = await api.start_run("w")

        scheduler = Scheduler(deployment.replace(schedule_poll_s=0.1).coordinator(), redis, pg_pool)
        task = asyncio.create_task(scheduler.run())

        async def fired_twice() -> list[dict[str, Any]]:
            items = await _runs(api, path)
            assert len(items) >= 2, items
            return items

        try:
            items = await eventually(fired_twice, 15)
        finally:
            await scheduler.shutdown()
            await task
        assert {item["schedule_id"] for item in items} == {schedule["id"]}
        assert by_hand["id"] not in {item["id"] for item in items}
        assert _newest_first(items)
        assert [item["id"] for item in await _runs(api, path, limit=1)] == [items[0]["id"]]

        assert (await api.request("GET", path, params={"limit": 0})).status_code == 422
        other = await api.new_key(tenant="other")
        assert (await api.request("GET", path, key=other)).status_code == 404
        assert (await api.request("GET", "/api/v1/schedules/missing/runs")).status_code == 404


async def test_trigger_runs(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        trigger = (await api.request("POST", "/api/v1/triggers", json={"workflow": "w", "auth": "bearer"})).json()
        path = f"/api/v1/triggers/{trigger['id']}/runs"
        assert await _runs(api, path) == []
        await api.start_run("w")
        started = []
        for n in range(3):
            hook = await api.client.post(
                trigger["hook_path"], json={"n": n}, headers={"Authorization": f"Bearer {trigger['secret']}"}
            )
            assert hook.status_code == 202, hook.text
            started.append(hook.json()["run_id"])

        items = await _runs(api, path)
        assert sorted(item["id"] for item in items) == sorted(started)
        assert _newest_first(items)
        assert [item["inputs"] for item in await _runs(api, path, limit=2)] == [item["inputs"] for item in items[:2]]

        viewer = await api.new_key(role="viewer")
        assert (await api.request("GET", path, key=viewer)).status_code == 200
        other = await api.new_key(tenant="other")
        assert (await api.request("GET", path, key=other)).status_code == 404
        assert (await api.request("GET", path, params={"limit": 1000})).status_code == 422
