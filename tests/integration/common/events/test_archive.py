"""The event archiver under outages: Redis and Postgres errors are retried and counted, and never stop it."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from common.events.archive import EventArchiver
from common.keys import Keys
from common.metrics import Metrics
from tests.support.eventually import eventually
from tests.support.faults import Flaky, errors


async def test_redis_and_postgres_errors_are_retried_and_counted(
    redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool
) -> None:
    await pg_pool.execute("INSERT INTO tenants (id, name) VALUES ('acme', 'Acme')")
    run_id = uuid.uuid4().hex
    for kind in ("run_started", "run_succeeded"):
        event = {"type": kind, "run_id": run_id, "ts": 1_700_000_000_000, "data": {}}
        await redis.xadd(keys.events(run_id), {"e": json.dumps(event)})
    ended = {"e": json.dumps({"type": "run_succeeded", "run_id": run_id})}
    await redis.xadd(keys.shard_for(run_id).tenant_events("acme"), ended)
    metrics = Metrics()
    lost = functools.partial(asyncpg.exceptions.ConnectionDoesNotExistError, "connection was closed")
    flaky_pool = Flaky(pg_pool, "fetch", times=2, error=lost)
    timing_out = functools.partial(RedisTimeoutError, "Timeout reading from socket")
    flaky_redis = Flaky(redis, "xreadgroup", times=2, error=timing_out)
    archiver = EventArchiver(flaky_redis, flaky_pool, keys, consumer="a1", block_ms=50, metrics=metrics)
    archiving = asyncio.create_task(archiver.run())
    try:

        async def archived() -> bool:
            stored = await pg_pool.fetchval("SELECT count(*) FROM run_events WHERE run_id = $1", run_id)
            # The stream, archived whole, is deleted rather than left as an empty key for good.
            return stored == 2 and await redis.exists(keys.events(run_id)) == 0

        await eventually(archived)
        assert not archiving.done()
    finally:
        await archiver.shutdown()
        await asyncio.wait_for(archiving, 10)
    # The tenants are read before the group is made on their streams.
    assert errors(metrics, "archiver", "group") == 2
    assert errors(metrics, "archiver", "read") == 2
    assert (await redis.xpending(keys.shard_for(run_id).tenant_events("acme"), "archiver"))["pending"] == 0
