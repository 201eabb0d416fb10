"""``prune_runs``: exactly the old ended runs go, with their rows and the blobs only they referenced; live runs,
their descendants, recent runs, other tenants and shared or hot blobs stay; a dry run counts the same and keeps all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.cas import CAS_PREFIX
from common.runs.prune import RUN_TABLES, prune_runs
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually

TENANT = "tenant-test"
OLD = timedelta(days=40)


def echo(name: str) -> dict[str, Any]:
    """One transform node whose output is the run's input ``x``: runs with the same ``x`` share a blob."""
    return {
        "name": name,
        "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.x }}"}}],
        "edges": [],
    }


async def finished(engine: Engine, pool: asyncpg.Pool, x: str) -> str:
    run_id = await engine.run_to_end(echo(f"echo-{x}"), {"x": x})

    async def recorded() -> bool:
        status = await pool.fetchval("SELECT status FROM runs WHERE id = $1", run_id)
        ref = await pool.fetchval("SELECT output_ref FROM run_steps WHERE run_id = $1", run_id)
        return status == "succeeded" and ref is not None

    await eventually(recorded)
    return run_id


async def backdate(pool: asyncpg.Pool, *run_ids: str) -> None:
    await pool.execute("UPDATE runs SET ended_at = now() - $2::interval WHERE id = ANY($1)", list(run_ids), OLD)


async def add_row(
    pool: asyncpg.Pool, run_id: str, *, status: str, parent: str | None = None, tenant: str = TENANT
) -> None:
    """A recorded run without hot state (ended ones ended long ago)."""
    await pool.execute(
        "INSERT INTO runs (id, tenant_id, status, parent_run_id, ended_at) VALUES ($1, $2, $3, $4,"
        " CASE WHEN $3 = 'running' THEN NULL ELSE now() - $5::interval END)",
        run_id,
        tenant,
        status,
        parent,
        OLD,
    )


async def add_records(pool: asyncpg.Pool, run_id: str) -> None:
    """One row of each table keyed by run id."""
    await pool.execute(
        "INSERT INTO run_events (run_id, event_id, type, data) VALUES ($1, '1-0', 'run_started', '{}')", run_id
    )
    await pool.execute("INSERT INTO node_logs (run_id, node_id, attempt, text) VALUES ($1, 't', 1, 'hi')", run_id)
    await pool.execute("INSERT INTO patches (run_id, from_version, to_version, ops) VALUES ($1, 1, 2, '[]')", run_id)
    await pool.execute(
        "INSERT INTO approvals (tenant_id, run_id, node_id, token_id) VALUES ($1, $2, 't', '0:t:1')", TENANT, run_id
    )


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[Any]]:
    tables = {
        "runs": "SELECT id FROM runs ORDER BY id",
        "run_steps": "SELECT run_id FROM run_steps ORDER BY run_id",
        "blobs": "SELECT digest FROM blobs ORDER BY digest",
    } | {table: f"SELECT run_id FROM {table} ORDER BY run_id" for table in RUN_TABLES}
    return {name: [row[0] for row in await pool.fetch(query)] for name, query in tables.items()}


async def digest_of(pool: asyncpg.Pool, run_id: str) -> str:
    ref: str = await pool.fetchval("SELECT output_ref FROM run_steps WHERE run_id = $1", run_id)
    return ref.removeprefix(CAS_PREFIX)


async def test_prune_removes_exactly_the_old_ended_runs(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    # Every output goes to CAS, so each run's step refers to a blob.
    async with Engine(deployment.replace(inline_output_max_bytes=0), redis, pool=pg_pool) as engine:
        lone = await finished(engine, pg_pool, "only-old")
        sharing_old = await finished(engine, pg_pool, "shared")
        recent = await finished(engine, pg_pool, "shared")
        hot_old = await finished(engine, pg_pool, "still-hot")
        resumed = await finished(engine, pg_pool, "resumed")
    await backdate(pg_pool, lone, sharing_old, hot_old, resumed)
    lone_digest, shared_digest, hot_digest = [await digest_of(pg_pool, r) for r in (lone, sharing_old, hot_old)]
    # Blobs' Redis copies outlive nothing but the CAS TTL: the old ones have expired, except one stored again lately.
    await redis.delete(keys.cas(lone_digest), keys.cas(shared_digest))
    # Resumed in Redis, not recorded yet: live, whatever its row says.
    await redis.hset(keys.run(resumed), "status", "running")
    # A live parent keeps its old ended descendants; an old ended parent takes its own along.
    live_parent, kept_child, kept_grandchild = "live-parent", "kept-child", "kept-grandchild"
    await add_row(pg_pool, live_parent, status="running")
    await add_row(pg_pool, kept_child, status="failed", parent=live_parent)
    await add_row(pg_pool, kept_grandchild, status="succeeded", parent=kept_child)
    await add_row(pg_pool, "old-parent", status="cancelled")
    await add_row(pg_pool, "old-child", status="timed_out", parent="old-parent")
    await add_row(pg_pool, "orphan", status="failed", parent="pruned-long-ago")
    await add_row(pg_pool, "elsewhere", status="failed", tenant="other")
    for run_id in (lone, recent, kept_child, "old-child"):
        await add_records(pg_pool, run_id)
    gone = {lone, sharing_old, hot_old, "old-parent", "old-child", "orphan"}
    before = await snapshot(pg_pool)
    cutoff = datetime.now(UTC) - timedelta(days=30)

    dry = await prune_runs(pg_pool, redis, keys, cutoff=cutoff, tenant_id=TENANT, dry_run=True, batch=2)
    assert await snapshot(pg_pool) == before
    report = await prune_runs(pg_pool, redis, keys, cutoff=cutoff, tenant_id=TENANT, batch=2)
    assert dry.model_dump(exclude={"dry_run"}) == report.model_dump(exclude={"dry_run"})
    assert (dry.dry_run, report.dry_run) == (True, False)

    after = await snapshot(pg_pool)
    assert set(after["runs"]) == set(before["runs"]) - gone
    assert report.runs == len(gone) and report.run_steps == 3
    assert (report.run_events, report.node_logs, report.patches, report.approvals) == (2, 2, 2, 2)
    for table in RUN_TABLES:
        assert sorted(after[table]) == sorted([recent, kept_child]), table
    assert set(after["run_steps"]) == {recent, resumed}
    # Only the blob no remaining run refers to and with no hot copy went.
    assert report.blobs == 1 and set(before["blobs"]) - set(after["blobs"]) == {lone_digest}
    assert {shared_digest, hot_digest} <= set(after["blobs"])
    # The pruned runs' hot state went with them; the others' stayed.
    assert not await redis.exists(keys.run(lone), keys.ir(lone), keys.nodes(lone), keys.events(lone))
    assert await redis.exists(keys.run(recent)) and await redis.exists(keys.run(resumed))

    again = await prune_runs(pg_pool, redis, keys, cutoff=cutoff, tenant_id=TENANT)
    assert again.runs == 0
    everyone = await prune_runs(pg_pool, redis, keys, cutoff=cutoff, tenant_id=None)
    assert everyone.runs == 1 and "elsewhere" not in (await snapshot(pg_pool))["runs"]
