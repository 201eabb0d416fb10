"""``POST /api/v1/admin/prune``: admin only, the caller's tenant (every tenant only for the bootstrap admin),
dry run, audited, and bad durations refused with a clear 422."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment

PRUNE = "/api/v1/admin/prune"


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool, engine=False) as client:
        yield client


async def old_run(pool: asyncpg.Pool, run_id: str, tenant: str) -> None:
    await pool.execute(
        "INSERT INTO runs (id, tenant_id, status, ended_at) VALUES ($1, $2, 'succeeded', now() - interval '40 days')",
        run_id,
        tenant,
    )


async def runs(pool: asyncpg.Pool) -> list[str]:
    return [row["id"] for row in await pool.fetch("SELECT id FROM runs ORDER BY id")]


async def test_prune_is_scoped_dry_run_first_and_audited(api: Api, pg_pool: asyncpg.Pool) -> None:
    await old_run(pg_pool, "mine", "default")
    await old_run(pg_pool, "theirs", "other")
    admin = await api.new_key(role="admin")

    dry = await api.request("POST", PRUNE, key=admin, json={"older_than": "30d", "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert (dry.json()["runs"], dry.json()["dry_run"]) == (1, True)
    assert await runs(pg_pool) == ["mine", "theirs"]
    assert (await api.request("GET", "/api/v1/audit", key=admin)).json()["items"] == []

    done = await api.request("POST", PRUNE, key=admin, json={"older_than": "30d"})
    assert done.status_code == 200, done.text
    assert (done.json()["runs"], done.json()["dry_run"]) == (1, False)
    assert await runs(pg_pool) == ["theirs"]
    [entry] = (await api.request("GET", "/api/v1/audit", key=admin)).json()["items"]
    assert (entry["action"], entry["target"], entry["tenant_id"]) == ("runs.prune", "runs", "default")
    assert entry["detail"]["older_than"] == "30d" and entry["detail"]["deleted"]["runs"] == 1

    refused = await api.request("POST", PRUNE, key=admin, json={"older_than": "30d", "all_tenants": True})
    assert refused.status_code == 403, refused.text
    everyone = await api.request("POST", PRUNE, json={"older_than": "30d", "all_tenants": True})
    assert everyone.status_code == 200 and everyone.json()["runs"] == 1
    assert await runs(pg_pool) == []


async def test_members_may_not_prune(api: Api) -> None:
    editor = await api.new_key(role="editor")
    response = await api.request("POST", PRUNE, key=editor, json={"older_than": "30d"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"older_than": "30"}, "older_than: Value error, duration: expected a whole number and a unit d, h or m"),
        ({"older_than": "0d"}, "older_than: Value error, duration: expected more than 0"),
        ({"older_than": 30}, "older_than: Input should be a valid string"),
        ({}, "body.older_than: Field required"),
        ({"older_than": "30d", "dryrun": True}, "body.dryrun: unknown field"),
    ],
)
async def test_bad_bodies_are_a_clear_422(api: Api, body: dict[str, Any], says: str) -> None:
    response = await api.request("POST", PRUNE, json=body)
    assert response.status_code == 422, response.text
    assert says in response.json()["error"]["message"]
