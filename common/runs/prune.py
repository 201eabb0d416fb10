"""Retention: delete runs that ended before a cutoff, with everything recorded about them and the blobs only they
referenced, from Postgres, and their hot state from Redis.

A child run goes only with its parent: while any ancestor stays (live, or ended after the cutoff) it stays too.
A run whose hot state says it is live again (resumed, not yet recorded) stays. A blob goes once no remaining step
refers to it and it has no hot copy in Redis: a hot copy means it was stored within the CAS TTL, maybe by a live
run whose steps are not recorded yet.
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import redis.asyncio as aioredis
from pydantic import BaseModel

from common.keys import Keys
from common.runs.cas import CAS_PREFIX
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.retention import hot_keys

ENDED = sorted(TERMINAL_RUN_STATUSES)
BATCH = 500
# Rows about a run, each table keyed by run_id.
RUN_TABLES = ("run_events", "node_logs", "patches", "approvals")

_OLD_RUNS = """
SELECT id FROM runs
WHERE status = ANY($1::text[]) AND COALESCE(ended_at, updated_at) < $2 AND ($3::text IS NULL OR tenant_id = $3)
  AND id > $4
ORDER BY id LIMIT $5
"""
# The runs of $1 with an ancestor that stays: walked upwards, so the cost follows the batch, not the table.
_HELD_BY_ANCESTOR = """
WITH RECURSIVE chain AS (
    SELECT r.id AS start, r.parent_run_id AS ancestor FROM runs r
    WHERE r.id = ANY($1::text[]) AND r.parent_run_id IS NOT NULL
    UNION
    SELECT c.start, a.parent_run_id FROM chain c JOIN runs a ON a.id = c.ancestor WHERE a.parent_run_id IS NOT NULL
)
SELECT DISTINCT c.start FROM chain c JOIN runs a ON a.id = c.ancestor
WHERE NOT (a.status = ANY($2::text[]) AND COALESCE(a.ended_at, a.updated_at) < $3)
"""
# Checked again under the row lock: a run resumed since it was chosen is not deleted.
_DELETE_RUNS = """
DELETE FROM runs WHERE id = ANY($1::text[]) AND status = ANY($2::text[]) AND COALESCE(ended_at, updated_at) < $3
RETURNING id
"""
_DELETE_STEPS = """
WITH gone AS (DELETE FROM run_steps WHERE run_id = ANY($1::text[]) RETURNING output_ref)
SELECT count(*) AS n, array_agg(DISTINCT output_ref) FILTER (WHERE output_ref LIKE 'cas://%') AS refs FROM gone
"""
_DELETE_BLOBS = """
DELETE FROM blobs b WHERE b.digest = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM run_steps s WHERE s.output_ref LIKE 'cas://%' AND s.output_ref = $2 || b.digest)
"""


class PruneReport(BaseModel):
    """What a prune deleted (or, for a dry run, would delete)."""

    cutoff: datetime
    dry_run: bool
    runs: int = 0
    run_steps: int = 0
    run_events: int = 0
    node_logs: int = 0
    patches: int = 0
    approvals: int = 0
    blobs: int = 0


async def prune_runs(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: Keys,
    *,
    cutoff: datetime,
    tenant_id: str | None,
    dry_run: bool = False,
    batch: int = BATCH,
) -> PruneReport:
    """Delete the runs of ``tenant_id`` (of every tenant when None) that ended before ``cutoff``, ``batch`` runs per
    transaction. A dry run deletes the same inside one transaction it rolls back, so its counts are exact."""
    report = PruneReport(cutoff=cutoff, dry_run=dry_run)
    async with pool.acquire() as conn:
        outer = conn.transaction()
        if dry_run:
            await outer.start()
        try:
            last = ""
            while ids := [row["id"] for row in await conn.fetch(_OLD_RUNS, ENDED, cutoff, tenant_id, last, batch)]:
                last = ids[-1]
                held = {row["start"] for row in await conn.fetch(_HELD_BY_ANCESTOR, ids, ENDED, cutoff)}
                ids = await _not_live(redis, keys, [run_id for run_id in ids if run_id not in held])
                if not ids:
                    continue
                # Nested in a dry run's transaction this is a savepoint; otherwise each batch commits on its own.
                async with conn.transaction():
                    deleted = await _delete_batch(conn, redis, keys, ids, cutoff, report)
                if not dry_run:
                    await _forget_hot_state(redis, keys, deleted)
        finally:
            if dry_run:
                await outer.rollback()
    return report


async def _not_live(redis: aioredis.Redis, keys: Keys, run_ids: list[str]) -> list[str]:
    """``run_ids`` less those whose hot state says they run again."""
    if not run_ids:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for run_id in run_ids:
            pipe.hget(keys.run(run_id), "status")
        statuses = await pipe.execute()
    return [run_id for run_id, status in zip(run_ids, statuses, strict=True) if status in (None, *ENDED)]


async def _delete_batch(
    conn: asyncpg.Connection,
    redis: aioredis.Redis,
    keys: Keys,
    run_ids: list[str],
    cutoff: datetime,
    report: PruneReport,
) -> list[str]:
    """Delete ``run_ids`` with their rows and the blobs only they referenced; returns the runs deleted."""
    deleted = [row["id"] for row in await conn.fetch(_DELETE_RUNS, run_ids, ENDED, cutoff)]
    if not deleted:
        return []
    report.runs += len(deleted)
    steps = await conn.fetchrow(_DELETE_STEPS, deleted)
    report.run_steps += steps["n"]
    for table in RUN_TABLES:
        tag = await conn.execute(f"DELETE FROM {table} WHERE run_id = ANY($1::text[])", deleted)
        setattr(report, table, getattr(report, table) + int(tag.split()[-1]))
    digests = [ref.removeprefix(CAS_PREFIX) for ref in steps["refs"] or ()]
    if digests:
        async with redis.pipeline(transaction=False) as pipe:
            for digest in digests:
                pipe.exists(keys.cas(digest))
            hot = await pipe.execute()
        cold = [digest for digest, exists in zip(digests, hot, strict=True) if not exists]
        if cold:
            tag = await conn.execute(_DELETE_BLOBS, cold, CAS_PREFIX)
            report.blobs += int(tag.split()[-1])
    return deleted


async def _forget_hot_state(redis: aioredis.Redis, keys: Keys, run_ids: list[str]) -> None:
    """Remove what Redis still holds of ended runs (never expired on its own); node logs expire by their TTL."""
    if not run_ids:
        return
    names = [name for run_id in run_ids for name in (*hot_keys(keys, run_id), keys.events(run_id))]
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.unlink(name)
        await pipe.execute()
