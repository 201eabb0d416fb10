"""The approval sweeper under outages: Redis and Postgres errors are retried and counted, and never stop it."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.runs.cancel import cancel_run
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.faults import Flaky, errors
from tests.support.redis_loss import forget_run
from workers.hitl import ApprovalSweeper, HitlHandler

GATE = {"id": "gate", "type": "hitl", "config": {"title": "Ship it?"}}


async def test_redis_and_postgres_errors_are_retried_and_counted(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    async with Engine(deployment, redis, handlers=[HitlHandler(pg_pool, redis, keys)], pool=pg_pool) as engine:
        run_id = await engine.submit({"name": "gate", "nodes": [GATE]})

        async def opened() -> str | None:
            # The node holds the approval once the handler's request script ran; the row is written before it, and
            # a run cancelled in between has its approval cancelled by the handler, not by the sweeper under test.
            state = (await engine.node_states(run_id)).get("gate", {})
            return state.get("approval_id") if state.get("status") == "waiting" else None

        approval_id = await eventually(opened)
        # Cancelled by the script alone: the approval stays pending until the sweeper sees the run ended.
        await cancel_run(engine.scripts, run_id)
    settings = deployment.replace(hitl_sweep_interval_s=0.05).worker()
    metrics = Metrics()
    flaky_pool = Flaky(pg_pool, "fetch", times=2, error=lambda: OSError("connection reset by peer"))
    sweeper = ApprovalSweeper(flaky_pool, Flaky(redis, "hget", times=1), keys, settings, metrics=metrics)
    sweeping = asyncio.create_task(sweeper.run())
    try:

        async def cancelled() -> bool:
            status = await pg_pool.fetchval("SELECT status FROM approvals WHERE id = $1", approval_id)
            return bool(status == "cancelled")

        await eventually(cancelled)
        assert not sweeping.done()
    finally:
        await sweeper.shutdown()
        await asyncio.wait_for(sweeping, 10)
    assert errors(metrics, "hitl-sweeper", "sweep") == 3


async def test_an_approval_of_a_run_redis_lost_stays_pending_while_postgres_holds_the_run_live(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    async with Engine(deployment, redis, handlers=[HitlHandler(pg_pool, redis, keys)], pool=pg_pool) as engine:
        run_id = await engine.submit({"name": "gate", "nodes": [GATE]}, recorded=True)

        async def recorded_waiting() -> bool:
            return await pg_pool.fetchval("SELECT status FROM runs WHERE id = $1", run_id) == "waiting"

        await eventually(recorded_waiting)
    await forget_run(redis, keys, run_id)
    sweeper = ApprovalSweeper(pg_pool, redis, keys, deployment.worker())
    status = "SELECT status FROM approvals WHERE run_id = $1"

    # The run is rebuilt with its approval pending: cancelling it now would strand the node.
    assert await sweeper.sweep() == (0, 0)
    assert await pg_pool.fetchval(status, run_id) == "pending"
    await pg_pool.execute("UPDATE runs SET status = 'failed' WHERE id = $1", run_id)
    assert await sweeper.sweep() == (0, 1)
    assert await pg_pool.fetchval(status, run_id) == "cancelled"
