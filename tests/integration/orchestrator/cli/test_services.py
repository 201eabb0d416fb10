"""``aob recover``: one reconciliation of Redis with Postgres on demand, saying what it did per run."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain
from tests.support.eventually import eventually
from tests.support.processes import run_aob
from tests.support.redis_loss import forget_run, step_status
from workers.hitl import HitlHandler


async def aob(deployment: Deployment, *argv: str) -> tuple[int, str, str]:
    """Run ``aob *argv`` as a process of this deployment; returns its exit code, stdout and stderr."""
    values = deployment.coordinator()
    env = {
        "AOB_REDIS_URL": values.redis_url or "",
        "AOB_DATABASE_URL": values.database_url or "",
        "AOB_KEY_PREFIX": values.key_prefix,
        "AOB_DB_SCHEMA": values.db_schema,
        "AOB_LOG_LEVEL": "ERROR",
    }
    return await run_aob(*argv, env=env)


async def test_recover_says_what_it_did_per_run(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    gated = {
        "name": "gated",
        "nodes": [{"id": "gate", "type": "hitl", "config": {"title": "Go?"}}, {"id": "go", "type": "noop"}],
        "edges": [{"from": "gate", "to": "go", "branch": "approved"}],
    }
    pause = {"id": "wait", "type": "delay", "config": {"seconds": 60}}
    slow = {"name": "slow", "nodes": [{"id": "a", "type": "noop"}, pause], "edges": [{"from": "a", "to": "wait"}]}
    async with Engine(deployment, redis, handlers=[HitlHandler(pg_pool, redis, keys)], pool=pg_pool) as engine:
        waiting = await engine.submit(gated, recorded=True)
        delayed = await engine.submit(slow, recorded=True)

        async def recorded() -> bool:
            return (
                await step_status(pg_pool, waiting, "gate") == "waiting"
                and await step_status(pg_pool, delayed, "wait") == "queued"
            )

        await eventually(recorded)
    for run_id in (waiting, delayed):
        await forget_run(redis, keys, run_id)
    stranded = "stranded-run"
    await pg_pool.execute(
        "INSERT INTO runs (id, tenant_id, workflow_id, workflow_name, version, status, definition)"
        " VALUES ($1, 't', 'w', 'c', 1, 'queued', $2)",
        stranded,
        chain(1),
    )
    await pg_pool.execute(
        "INSERT INTO runs (id, tenant_id, status, parent_run_id) VALUES ('orphan', 't', 'running', 'p')"
    )

    code, out, err = await aob(deployment, "recover", "--older-than-s", "0")

    assert code == 1, (out, err)
    assert sorted(out.splitlines()) == sorted(
        [
            f"rebuilt run {waiting} (waiting): queued nothing; waiting for approval: gate",
            f"rebuilt run {delayed} (running): queued wait",
            "run orphan: cannot be rebuilt: Postgres holds neither its definition nor its IR (a child run started"
            " before migration 006)",
            f"started run {stranded}: recorded but never started",
        ]
    )
    assert await redis.hget(keys.run(waiting), "status") == "waiting"
    assert await redis.hget(keys.run(stranded), "status") is not None

    await pg_pool.execute("DELETE FROM runs WHERE id = 'orphan'")
    assert await aob(deployment, "recover") == (
        0,
        "nothing to recover: Redis holds every live run Postgres records\n",
        "",
    )
