"""Filters of GET /api/v1/runs: status, workflow, time range, started-by, schedule/trigger, id search, paging."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    # No engine: rows keep the status and columns each test gives them.
    async with running_api(deployment, redis, pg_pool, engine=False) as client:
        yield client


async def _listed(api: Api, key: dict[str, str] | None = None, **params: Any) -> list[str]:
    response = await api.request("GET", "/api/v1/runs", params=params, key=key)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@pytest.fixture
async def runs(api: Api, pg_pool: asyncpg.Pool) -> dict[str, str]:
    """Five runs of two workflows, by two keys of one owner and a third key, one per schedule and trigger."""
    await api.create_workflow("alpha", chain_definition(1))
    await api.create_workflow("beta", chain_definition(1))
    ann_1 = await api.new_key(role="editor", owner="ann")
    ann_2 = await api.new_key(role="editor", owner="ann")
    made = {
        "alpha_ann": (await api.start_run("alpha", key=ann_1))["id"],
        "beta_ann": (await api.start_run("beta", key=ann_2))["id"],
        "alpha_admin": (await api.start_run("alpha"))["id"],
        "scheduled": (await api.start_run("alpha"))["id"],
        "triggered": (await api.start_run("beta"))["id"],
    }
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i, (name, run_id) in enumerate(made.items()):
        status = "failed" if name in ("alpha_ann", "triggered") else "succeeded"
        await pg_pool.execute(
            "UPDATE runs SET created_at = $2, status = $3, schedule_id = $4, trigger_id = $5 WHERE id = $1",
            run_id,
            base + timedelta(hours=i),
            status,
            "sched-1" if name == "scheduled" else None,
            "trig-1" if name == "triggered" else None,
        )
    return made


async def test_each_filter_narrows_the_list(api: Api, runs: dict[str, str]) -> None:
    def ids(*names: str) -> list[str]:
        # Newest first: the fixture created them an hour apart in this order.
        return [runs[name] for name in reversed(list(runs)) if name in names]

    assert await _listed(api, status="failed") == ids("alpha_ann", "triggered")
    assert await _listed(api, status=["failed", "succeeded"], workflow="beta") == ids("beta_ann", "triggered")
    assert await _listed(api, owner="ann") == ids("alpha_ann", "beta_ann")
    ann_key = (await api.request("GET", f"/api/v1/runs/{runs['alpha_ann']}")).json()["started_by"]
    assert await _listed(api, started_by=ann_key) == ids("alpha_ann")
    assert await _listed(api, schedule_id="sched-1") == ids("scheduled")
    assert await _listed(api, trigger_id="trig-1") == ids("triggered")
    assert await _listed(api, source="schedule") == ids("scheduled")
    assert await _listed(api, source="trigger") == ids("triggered")
    assert await _listed(api, source="api") == ids("alpha_ann", "beta_ann", "alpha_admin")
    assert await _listed(api, created_after="2026-01-01T01:00:00Z", created_before="2026-01-01T03:00:00Z") == ids(
        "beta_ann", "alpha_admin"
    )
    assert await _listed(api, id_prefix=runs["scheduled"][:12]) == ids("scheduled")
    listed = (await api.request("GET", "/api/v1/runs", params={"trigger_id": "trig-1"})).json()["items"]
    assert listed[0]["trigger_id"] == "trig-1" and listed[0]["schedule_id"] is None


async def test_filters_hold_across_pages(api: Api, runs: dict[str, str]) -> None:
    first = (await api.request("GET", "/api/v1/runs", params={"workflow": "alpha", "limit": 2})).json()
    assert first["next_cursor"] is not None
    rest = await _listed(api, workflow="alpha", limit=2, cursor=first["next_cursor"])
    assert [i["id"] for i in first["items"]] + rest == [runs["scheduled"], runs["alpha_admin"], runs["alpha_ann"]]


async def test_other_tenants_runs_never_match(api: Api, runs: dict[str, str]) -> None:
    other = await api.new_key(tenant="other-tenant")
    assert await _listed(api, other) == []
    assert await _listed(api, other, id_prefix=runs["scheduled"][:8]) == []


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({"status": "done"}, "status"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"source": "cron"}, "source"),
        ({"id_prefix": "ab%"}, "id_prefix"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
async def test_bad_filters_are_422_naming_the_parameter(
    api: Api, runs: dict[str, str], params: dict[str, str], where: str
) -> None:
    response = await api.request("GET", "/api/v1/runs", params=params)
    assert response.status_code == 422, response.text
    assert where in response.text


async def test_a_time_without_zone_reads_as_utc(api: Api, runs: dict[str, str]) -> None:
    naive = await _listed(api, created_after="2026-01-01T03:00:00", created_before="2026-01-01T04:00:00")
    assert naive == [runs["scheduled"]]
