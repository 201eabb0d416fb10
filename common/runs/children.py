"""Listing a run's child runs for the API: recorded rows, plus children started but not yet recorded."""

from __future__ import annotations

from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys

_HOT_FIELDS = ["status", "parent_node_id", "workflow_id", "workflow_name", "version"]


async def list_child_runs(
    pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, tenant_id: str, run_id: str
) -> list[dict[str, Any]]:
    """``{id, parent_node_id, workflow_id, workflow_name, version, status, created_at}`` of each child of
    ``run_id``, oldest first; live status from Redis where the run is still hot."""
    rows = await pool.fetch(
        "SELECT id, parent_node_id, workflow_id, workflow_name, version, status, created_at FROM runs"
        " WHERE parent_run_id = $1 AND tenant_id = $2 ORDER BY created_at, id",
        run_id,
        tenant_id,
    )
    children = [
        {
            "id": row["id"],
            "parent_node_id": row["parent_node_id"],
            "workflow_id": row["workflow_id"],
            "workflow_name": row["workflow_name"],
            "version": row["version"],
            "status": row["status"],
            "created_at": row["created_at"].isoformat(),
        }
        for row in rows
    ]
    ids = [child["id"] for child in children]
    # The recorder writes rows a moment after a child starts; the parent's set knows every child at once.
    ids += sorted(set(await redis.smembers(keys.child_runs(run_id))) - set(ids))
    async with redis.pipeline(transaction=False) as pipe:
        for child_id in ids:
            pipe.hmget(keys.run(child_id), _HOT_FIELDS)
        hot = await pipe.execute()
    by_id = {child["id"]: child for child in children}
    for child_id, values in zip(ids, hot, strict=True):
        fields = dict(zip(_HOT_FIELDS, values, strict=True))
        if fields["status"] is None:
            continue
        if child_id in by_id:
            by_id[child_id]["status"] = fields["status"]
        else:
            children.append(
                {
                    "id": child_id,
                    "parent_node_id": fields["parent_node_id"],
                    "workflow_id": fields["workflow_id"],
                    "workflow_name": fields["workflow_name"],
                    "version": int(fields["version"]) if fields["version"] else None,
                    "status": fields["status"],
                    "created_at": None,
                }
            )
    return children
