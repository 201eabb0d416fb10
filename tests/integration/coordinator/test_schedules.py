"""The firing side of schedules: one run per fire time under concurrent schedulers, overlap, catch-up."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common.keys import Keys
from common.runs.admission import Admission
from common.runs.scripts import Scripts
from common.schedules import ScheduleFirer, idempotency_key
from common.tracing._sdk import SdkTracing
from coordinator import Scheduler
from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment


async def _schedule(api: Api, **fields: Any) -> dict[str, Any]:
    response = await api.request("POST", "/api/v1/schedules", json={"workflow": "w", **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _run_schedulers(
    deployment: Deployment, redis: aioredis.Redis, pool: asyncpg.Pool, seconds: float
) -> datetime:
    """Two schedulers polling the same schedules for ``seconds``; returns when they were asked to stop."""
    settings = deployment.replace(schedule_poll_s=0.1).coordinator()
    schedulers = [Scheduler(settings, redis, pool) for _ in range(2)]
    tasks = [asyncio.create_task(scheduler.run()) for scheduler in schedulers]
    await asyncio.sleep(seconds)
    stopping = datetime.now(UTC)
    for scheduler in schedulers:
        await scheduler.shutdown()
    await asyncio.gather(*tasks)
    return stopping


async def _runs(pool: asyncpg.Pool, schedule_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT id, idempotency_key, status FROM runs WHERE schedule_id = $1 ORDER BY idempotency_key", schedule_id
    )
    return rows


async def test_two_schedulers_start_one_run_per_fire_time(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with running_api(deployment, redis, pg_pool) as api:
        await api.create_workflow("w", chain_definition(1))
        schedule = await _schedule(api, interval_s=1, overlap="allow")
        first = datetime.fromisoformat(schedule["next_fire_at"])
        stopping = await _run_schedulers(deployment, redis, pg_pool, 10.0)
        stopped = datetime.now(UTC)
        runs = await _runs(pg_pool, schedule["id"])
        keys = [row["idempotency_key"] for row in runs]
        # Every second from the first fire time on, none twice, none missed: at least up to a poll before the stop
        # was asked, at most up to when the schedulers had stopped.
        expected = [idempotency_key(schedule["id"], first + timedelta(seconds=i)) for i in range(len(keys))]
        assert keys == expected
        assert first + timedelta(seconds=len(keys) - 1) <= stopped
        assert first + timedelta(seconds=len(keys)) > stopping - timedelta(seconds=0.5), (keys, stopping)
        assert len(keys) >= 9
        # Each was started in the engine and ran to its end.
        for row in runs:
            run = await api.wait_run(row["id"])
            assert run["status"] == "succeeded" and run["schedule_id"] == schedule["id"]


async def test_overlap_skip_fires_nothing_while_a_run_is_live(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    # No engine: the first run stays live, so a skip schedule starts no other; an allow schedule starts one a second.
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        skip = await _schedule(api, interval_s=1, overlap="skip")
        allow = await _schedule(api, interval_s=1, overlap="allow")
        await _run_schedulers(deployment, redis, pg_pool, 3.0)
        assert len(await _runs(pg_pool, skip["id"])) == 1
        assert len(await _runs(pg_pool, allow["id"])) >= 2
        shown = (await api.request("GET", f"/api/v1/schedules/{skip['id']}")).json()
        assert datetime.fromisoformat(shown["next_fire_at"]) > datetime.now(UTC) - timedelta(seconds=1)


async def test_catchup_after_an_outage_follows_the_policy(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        policies = {
            "none": await _schedule(api, interval_s=3600, overlap="allow", catchup="none"),
            "last": await _schedule(api, interval_s=3600, overlap="allow", catchup="last"),
            "all": await _schedule(api, interval_s=3600, overlap="allow", catchup="all", catchup_max=3),
        }
        latest = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        # An outage of ten hours: the schedules' next fire times lie ten hours back.
        outage_start = latest - timedelta(hours=9)
        await pg_pool.execute("UPDATE schedules SET next_fire_at = $1", outage_start)
        # A grace of a millisecond: every fire time before now counts as missed.
        keys = Keys(deployment.key_prefix)
        admission = Admission(redis, keys, deployment.coordinator())
        firer = ScheduleFirer(Scripts(redis, keys), pg_pool, admission, max_agents=5, grace_s=0.001)
        await firer.fire_due()

        def keys_of(policy: str, hours_back: list[int]) -> list[str]:
            return [idempotency_key(policies[policy]["id"], latest - timedelta(hours=h)) for h in hours_back]

        for policy, expected in (("none", []), ("last", [0]), ("all", [2, 1, 0])):
            runs = await _runs(pg_pool, policies[policy]["id"])
            assert [row["idempotency_key"] for row in runs] == keys_of(policy, expected), policy
            shown = (await api.request("GET", f"/api/v1/schedules/{policies[policy]['id']}")).json()
            assert datetime.fromisoformat(shown["next_fire_at"]) == latest + timedelta(hours=1)
            for row in runs:
                assert await redis.exists(Keys(deployment.key_prefix).run(row["id"]))

        # A poller that handled the same fire times before (a restart replaying them) starts no second run.
        await pg_pool.execute("UPDATE schedules SET next_fire_at = $1", outage_start)
        await firer.fire_due()
        assert len(await _runs(pg_pool, policies["all"]["id"])) == 3
        assert len(await _runs(pg_pool, policies["last"]["id"])) == 1


async def test_scheduled_runs_pass_the_run_quotas(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    # One active run per tenant, and no engine to end it: the first fire time starts a run, the others none.
    deployment = deployment.replace(max_active_runs_per_tenant=1)
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        schedule = await _schedule(api, interval_s=1, overlap="allow")
        await _run_schedulers(deployment, redis, pg_pool, 2.5)
        assert len(await _runs(pg_pool, schedule["id"])) == 1


async def test_a_broken_schedule_does_not_hold_back_the_others(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        good = await _schedule(api, interval_s=3600, catchup="last")
        broken = await _schedule(api, interval_s=3600, catchup="last")
        past = datetime.now(UTC) - timedelta(hours=2)
        await pg_pool.execute("UPDATE schedules SET next_fire_at = $1", past)
        # Written behind the API's back: a timing no schedule can have.
        await pg_pool.execute("UPDATE schedules SET interval_s = NULL, cron = 'not cron' WHERE id = $1", broken["id"])
        keys = Keys(deployment.key_prefix)
        firer = ScheduleFirer(Scripts(redis, keys), pg_pool, Admission(redis, keys, deployment.coordinator()),
                              max_agents=5, grace_s=0.001)  # fmt: skip
        assert len(await firer.fire_due()) == 1
        assert len(await _runs(pg_pool, good["id"])) == 1
        retry_at = await pg_pool.fetchval("SELECT next_fire_at FROM schedules WHERE id = $1", broken["id"])
        assert retry_at > datetime.now(UTC) + timedelta(seconds=30)


async def test_a_scheduled_run_gets_a_trace_of_its_own_rooted_at_its_fire_time(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    exported = InMemorySpanExporter()
    tracing = SdkTracing("aob-coordinator", "http://127.0.0.1:9/v1/traces", exporter=exported, batch=False)
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        await api.create_workflow("w", chain_definition(1))
        await _schedule(api, interval_s=3600, catchup="last")
        await pg_pool.execute("UPDATE schedules SET next_fire_at = $1", datetime.now(UTC) - timedelta(hours=2))
        keys = Keys(deployment.key_prefix)
        firer = ScheduleFirer(Scripts(redis, keys), pg_pool, Admission(redis, keys, deployment.coordinator()),
                              max_agents=5, grace_s=0.001, tracing=tracing)  # fmt: skip
        [run_id] = await firer.fire_due()
    [fire] = exported.get_finished_spans()
    assert fire.name == "aob.schedule.fire" and fire.attributes["aob.run_id"] == run_id and fire.parent is None
    traceparent = await redis.hget(keys.run(run_id), "traceparent")
    assert traceparent == f"00-{fire.context.trace_id:032x}-{fire.context.span_id:016x}-{fire.context.trace_flags:02x}"
