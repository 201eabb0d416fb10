"""Hot-state retention: an ended run's Redis keys expire once Postgres has it; a resume keeps them (issue 13)."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from common.runs.resume import resume_run
from common.runs.retention import hot_keys
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually

FLAKY = {
    "name": "t",
    "nodes": [
        {"id": "wait", "type": "delay", "config": {"seconds": 1.5}},
        {"id": "flaky", "type": "transform", "config": {"output": "{{ inputs.n // inputs.d }}"}},
    ],
    "edges": [{"from": "wait", "to": "flaky"}],
}


async def ttls(redis: aioredis.Redis, keys: list[str]) -> list[int]:
    return [await redis.ttl(key) for key in keys]


async def test_an_ended_run_expires_once_recorded_and_a_resume_keeps_it(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    local = deployment.replace(hot_retention_s=600)
    async with Engine(local, redis, pool=pg_pool) as engine:
        run_id = await engine.submit(FLAKY, {"n": 1, "d": 0})
        # What a control node would leave: its state and its child runs.
        await redis.sadd(engine.keys.child_runs(run_id), "child-1")
        await redis.hset(engine.keys.control_state(run_id, "flaky"), "token_id", "x")
        assert await engine.wait_ended(run_id) == "failed"
        watched = [*hot_keys(engine.keys, run_id), engine.keys.control_state(run_id, "flaky")]

        async def expiring() -> bool:
            existing = [t for t in await ttls(redis, watched) if t != -2]
            return bool(existing) and all(0 < t <= 600 for t in existing)

        await eventually(expiring)
        await redis.hset(engine.keys.run(run_id), "inputs", '{"n": 4, "d": 2}')
        # From `wait`: the run stays live for its delay, so it cannot end (and expire again) before the check.
        assert (await resume_run(engine.scripts, run_id, from_node="wait")).status == "ok"
        assert all(t == -1 for t in await ttls(redis, hot_keys(engine.keys, run_id)) if t != -2)
        assert await engine.wait_ended(run_id) == "succeeded"
        assert await engine.output(run_id, "flaky") == 2
