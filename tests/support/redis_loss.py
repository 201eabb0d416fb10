"""Losing Redis in a test: deleting a deployment's keys (its "FLUSHALL") or one run's, and checking afterwards
that Postgres records what Redis holds."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from tests.support.eventually import eventually


async def wipe(redis: aioredis.Redis, keys: Keys) -> int:
    """Delete every key of the deployment: what losing Redis looks like to it (never FLUSHALL a shared server)."""
    doomed = [k async for k in redis.scan_iter(match=f"{keys.prefix}*", count=1000)]
    return int(await redis.delete(*doomed)) if doomed else 0


async def forget_run(redis: aioredis.Redis, keys: Keys, run_id: str) -> int:
    """Delete every key of one run (those named ``<name>:{<shard tag>}:<run id>[:<more>]``)."""
    doomed = []
    for pattern in (f"{keys.prefix}*}}:{run_id}", f"{keys.prefix}*}}:{run_id}:*"):
        doomed += [k async for k in redis.scan_iter(match=pattern, count=1000)]
    return int(await redis.delete(*doomed)) if doomed else 0


async def latest_steps(pool: asyncpg.Pool, run_id: str) -> dict[str, asyncpg.Record]:
    """Each node's latest recorded attempt."""
    rows = await pool.fetch(
        "SELECT DISTINCT ON (node_id) * FROM run_steps WHERE run_id = $1 ORDER BY node_id, attempt DESC", run_id
    )
    return {row["node_id"]: row for row in rows}


async def step_status(pool: asyncpg.Pool, run_id: str, node_id: str) -> str | None:
    """The recorded status of the node's latest attempt."""
    row = (await latest_steps(pool, run_id)).get(node_id)
    return None if row is None else str(row["status"])


async def differences(pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, run_id: str) -> list[str]:
    """Where the ``runs`` row and latest steps of ``run_id`` disagree with its hot state."""
    hot = await redis.hgetall(keys.run(run_id))
    nodes = {node_id: json.loads(raw) for node_id, raw in (await redis.hgetall(keys.nodes(run_id))).items()}
    row = await pool.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
    steps = await latest_steps(pool, run_id)
    found: list[str] = []
    if row is None:
        return [f"run {run_id}: no row"]
    recorded_outputs = _empty_as_list(row["outputs"])
    hot_outputs = _empty_as_list(json.loads(hot["outputs"]) if "outputs" in hot else None)
    for what, pg, rd in [
        ("status", row["status"], hot.get("status")),
        ("epoch", row["epoch"], int(hot.get("epoch", 0))),
        ("ir_version", row["ir_version"], int(hot.get("ir_version", 0))),
        ("outputs", recorded_outputs, hot_outputs),
    ]:
        if pg != rd:
            found.append(f"run {run_id} {what}: Postgres {pg!r}, Redis {rd!r}")
    for node_id in sorted(set(nodes) | set(steps)):
        state, step = nodes.get(node_id, {}), steps.get(node_id)
        recorded = None if step is None else (step["status"], step["attempt"], step["output_ref"])
        held = (state.get("status"), state.get("attempt"), state.get("output_ref"))
        if recorded != held:
            found.append(f"run {run_id} node {node_id}: Postgres {recorded}, Redis {held}")
    return found


def _empty_as_list(value: Any) -> Any:
    # The scripts' cjson records an empty list inside outputs as {}.
    if isinstance(value, dict):
        return {k: _empty_as_list(v) for k, v in value.items()} or []
    if isinstance(value, list):
        return [_empty_as_list(v) for v in value]
    return value


async def postgres_matches_redis(pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, run_ids: list[str]) -> None:
    """Wait until the recorder has caught up with every run of ``run_ids``; fail listing what still differs."""

    async def check() -> bool:
        found = [d for run_id in run_ids for d in await differences(pool, redis, keys, run_id)]
        assert not found, "; ".join(found[:10])
        return True

    await eventually(check, timeout_s=15)
