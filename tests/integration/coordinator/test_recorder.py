"""The recorder under outages: Redis and Postgres errors are retried and counted, and never stop it."""

from __future__ import annotations

import asyncio
import functools

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from coordinator import Recorder
from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain
from tests.support.eventually import eventually
from tests.support.faults import Flaky, errors
from tests.support.shards import ledger_entries


async def test_redis_and_postgres_errors_are_retried_and_counted(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    keys = Keys(deployment.key_prefix)
    async with Engine(deployment, redis) as engine:  # no pool: no recorder of its own
        run_id = await engine.run_to_end(chain(2))
    metrics = Metrics()
    flaky_redis = Flaky(redis, "xreadgroup", times=3)
    starting_up = functools.partial(asyncpg.exceptions.CannotConnectNowError, "the database system is starting up")
    flaky_pool = Flaky(pg_pool, "acquire", times=2, error=starting_up)
    recorder = Recorder(flaky_redis, flaky_pool, keys, "rec-1", metrics=metrics)
    recording = asyncio.create_task(recorder.run())
    try:

        async def recorded() -> str | None:
            return await pg_pool.fetchval("SELECT status FROM runs WHERE id = $1", run_id)  # type: ignore[no-any-return]

        assert await eventually(recorded) == "succeeded"
        steps = await pg_pool.fetch("SELECT node_id, status FROM run_steps WHERE run_id = $1 ORDER BY node_id", run_id)
        assert [(s["node_id"], s["status"]) for s in steps] == [("n0", "succeeded"), ("n1", "succeeded")]
        assert not recording.done()
    finally:
        await recorder.shutdown()
        await asyncio.wait_for(recording, 10)
    assert errors(metrics, "recorder", "read") == 3
    assert errors(metrics, "recorder", "handle") == 2
    assert await ledger_entries(redis, keys) == []
