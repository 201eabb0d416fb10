"""The admission script on real Redis: limits count together or not at all, a run is admitted once, and a run
counts in its tenant's active runs from its start to its end (and again once rebuilt or resumed)."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.admission import ACTIVE_RUNS, Admission, Limit, count_active, release_ended
from common.runs.cancel import cancel_run
from common.runs.cas import Cas
from common.runs.rebuild import rebuild_run
from common.runs.resume import resume_run
from common.settings import RunQuotaFields
from coordinator import Recorder
from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain
from tests.support.eventually import eventually
from tests.support.redis_loss import forget_run

TENANT = "tenant-test"


async def test_limits_count_only_when_every_one_passes(redis: aioredis.Redis, keys: Keys) -> None:
    admission = Admission(redis, keys, RunQuotaFields())
    limits = [Limit("tight", 1, "tight things"), Limit("loose", 5, "loose things")]
    assert (await admission.count(limits)).allowed
    refused = await admission.count(limits)
    assert (refused.allowed, refused.refused_by, refused.limit) == (False, "tight things", 1)
    assert await redis.get(keys.rate("loose")) == "1"


async def test_a_run_is_admitted_once_and_the_active_cap_refuses_the_next(redis: aioredis.Redis, keys: Keys) -> None:
    admission = Admission(redis, keys, RunQuotaFields(max_active_runs_per_tenant=2, rate_runs_no_agents_per_min=10))
    for run_id in ("r1", "r1", "r2"):
        assert (await admission.admit_run(TENANT, run_id, agent_count=0, started_by="k")).allowed
    assert await redis.get(keys.rate("runs:no_agents:key:k")) == "2"
    refused = await admission.admit_run(TENANT, "r3", agent_count=0, started_by="k")
    assert (refused.allowed, refused.refused_by) == (False, ACTIVE_RUNS)
    assert refused.refusal(60) == "active runs per tenant is limited to 2 at once"
    await admission.release(TENANT, "r1")
    assert (await admission.admit_run(TENANT, "r3", agent_count=3, started_by=None)).allowed
    assert await redis.get(keys.rate(f"runs:many_agents:tenant:{TENANT}")) == "1"


async def test_a_run_that_started_and_ended_is_not_admitted_again(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    # Two advances of one map both start a child; the child may end (and leave the active set) between them.
    admission = Admission(redis, keys, RunQuotaFields(rate_runs_no_agents_per_min=10))
    engine = Engine(deployment, redis, pool=pg_pool)
    run_id = await engine.submit(chain(2), recorded=True)
    await cancel_run(engine.scripts, run_id, reason="test")
    # The run's shard lists it as ended; the coordinator's timer takes it out of the active runs.
    assert await release_ended(redis, keys, list(range(keys.shards))) == 1
    assert await redis.zscore(keys.tenant_active_runs(TENANT), run_id) is None
    counter = keys.rate("runs:no_agents:key:k")
    await redis.delete(counter)
    assert (await admission.admit_run(TENANT, run_id, agent_count=0, started_by="k")).allowed
    assert await redis.get(counter) is None
    assert await redis.zscore(keys.tenant_active_runs(TENANT), run_id) is None


async def test_a_run_counts_as_active_from_start_to_end_and_again_when_it_lives_again(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    # No workers run: the run stays running until it is cancelled.
    engine = Engine(deployment, redis, pool=pg_pool)
    active = keys.tenant_active_runs(TENANT)
    run_id = await engine.submit(chain(2), recorded=True)
    # Counted from its admission (the engine starts runs without one), as the API's start does.
    await count_active(redis, keys, run_id)
    await cancel_run(engine.scripts, run_id, reason="test")
    assert await redis.zscore(active, run_id) is not None
    assert await release_ended(redis, keys, list(range(keys.shards))) == 1
    assert await redis.zscore(active, run_id) is None
    await resume_run(engine.scripts, run_id)
    assert await redis.zscore(active, run_id) is not None
    async with Recorder(redis, pg_pool, keys, "rec-admission") as recorder:
        recording = asyncio.create_task(recorder.run())
        await eventually(lambda: _recorded_as(pg_pool, run_id, "running"))
        await recorder.shutdown()
        await recording
    # Redis lost the run (and the admission script dropped it as gone): rebuilt, it counts again.
    await forget_run(redis, keys, run_id)
    await redis.zrem(active, run_id)
    cas = Cas(redis, keys, pg_pool)
    outcome = await rebuild_run(engine.scripts, pg_pool, cas, run_id, max_agents=engine.max_agents)
    assert outcome.result == "rebuilt", outcome
    assert await redis.zscore(active, run_id) is not None


async def _recorded_as(pool: asyncpg.Pool, run_id: str, status: str) -> bool:
    return bool(await pool.fetchval("SELECT status = $2 FROM runs WHERE id = $1", run_id, status))
