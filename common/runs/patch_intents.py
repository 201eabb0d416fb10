"""Patch intents: the Postgres side of a runtime patch, written before the Redis swap and settled after it.

A patch is ``pending`` from before its IR swap until the transaction that records the run's new definition
marks it ``applied``. A ``pending`` intent left by a crash is settled from Redis, the side that decides: the
run's IR version there says whether the swap happened.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys

logger = logging.getLogger(__name__)

_LOCK_NAMESPACE = "aob.patch:"


@asynccontextmanager
async def patch_lock(conn: asyncpg.Connection, run_id: str) -> AsyncIterator[None]:
    """Hold the run's patch lock (a session advisory lock: a crashed holder's connection releases it)."""
    await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", _LOCK_NAMESPACE + run_id)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", _LOCK_NAMESPACE + run_id)


async def write_intent(
    conn: asyncpg.Connection,
    run_id: str,
    from_version: int,
    definition: dict[str, Any],
    ops: list[dict[str, Any]],
    author: str,
    reason: str | None,
) -> str:
    """Record, committed before the swap (outside any transaction), that a patch is about to be swapped in."""
    intent_id: str = await conn.fetchval(
        "INSERT INTO patches (run_id, from_version, to_version, ops, author, reason, state, definition)"
        " VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7) RETURNING id",
        run_id,
        from_version,
        from_version + 1,
        ops,
        author,
        reason,
        definition,
    )
    return intent_id


async def confirm_intent(conn: asyncpg.Connection, intent_id: str, run_id: str, to_version: int) -> None:
    """Make the run's definition the intent's and mark it applied (in the caller's transaction)."""
    await conn.execute(
        "UPDATE runs r SET definition = p.definition, definition_version = p.to_version FROM patches p"
        " WHERE p.id = $1 AND r.id = $2 AND r.definition_version < p.to_version",
        intent_id,
        run_id,
    )
    await conn.execute("UPDATE patches SET state = 'applied', to_version = $2 WHERE id = $1", intent_id, to_version)


async def settle_intents(conn: asyncpg.Connection, redis: aioredis.Redis, keys: Keys, run_id: str) -> int:
    """Settle the run's pending intents from its IR version in Redis; returns how many were settled.

    The caller holds the run's ``patch_lock``, so no patch of the run is in flight.
    """
    hot_version = await redis.hget(keys.run(run_id), "ir_version")
    return await settle_intents_at(conn, run_id, None if hot_version is None else int(hot_version))


async def settle_intents_at(conn: asyncpg.Connection, run_id: str, ir_version: int | None) -> int:
    """Settle the run's pending intents as if its IR were at ``ir_version`` (None: no IR); returns how many.

    The caller holds the run's ``patch_lock``. Rebuilding a run Redis lost settles them at the version Postgres
    recorded, the last one known to have been swapped in.
    """
    pending = await conn.fetch(
        "SELECT id, to_version FROM patches WHERE run_id = $1 AND state = 'pending' ORDER BY to_version", run_id
    )
    for intent in pending:
        if ir_version is not None and ir_version >= intent["to_version"]:
            await confirm_intent(conn, intent["id"], run_id, intent["to_version"])
            logger.warning("run %s: patch to version %d was swapped in before a crash: confirmed", run_id, intent[1])
        else:
            await conn.execute("UPDATE patches SET state = 'abandoned' WHERE id = $1", intent["id"])
            logger.warning("run %s: patch to version %d never reached Redis: abandoned", run_id, intent["to_version"])
    return len(pending)


async def settle_stale_intents(pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, *, older_than_s: float) -> int:
    """Settle every intent pending for ``older_than_s`` (its writer died); for a periodic reconciler."""
    run_ids = await pool.fetch(
        "SELECT DISTINCT run_id FROM patches"
        " WHERE state = 'pending' AND created_at < now() - make_interval(secs => $1)",
        older_than_s,
    )
    settled = 0
    for row in run_ids:
        async with pool.acquire() as conn, patch_lock(conn, row["run_id"]), conn.transaction():
            settled += await settle_intents(conn, redis, keys, row["run_id"])
    return settled
