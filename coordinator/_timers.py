"""The coordinator's timers over the shards it owns: due delayed tokens back to their streams, runs past their
deadline, and ended runs out of their tenants' active runs. Each asks every shard at once."""

from __future__ import annotations

import asyncio
import json
import logging

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.clock import redis_now_ms
from common.runs.scripts import Scripts

logger = logging.getLogger(__name__)

MOVE_BATCH = 500


async def move_due_tokens(scripts: Scripts, shards: list[int]) -> int:
    """Move every due token of the shards' ``wf.delayed`` to its task stream; returns how many moved."""
    total = 0
    while shards:
        moved = await asyncio.gather(*(scripts.move_due(shard, MOVE_BATCH) for shard in shards))
        total += sum(moved)
        # A shard that filled its batch may have more due.
        shards = [shard for shard, count in zip(shards, moved, strict=True) if count >= MOVE_BATCH]
    return total


async def time_out_runs(redis: aioredis.Redis, scripts: Scripts, keys: Keys, shards: list[int]) -> int:
    """End every run of the shards past its deadline as ``timed_out``; returns how many were due."""
    if not shards:
        return 0
    now = await redis_now_ms(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for shard in shards:
            pipe.zrangebyscore(keys.shard(shard).run_deadlines, "-inf", now, start=0, num=100)
        due = await pipe.execute()
    error = json.dumps({"type": "run_timeout", "message": "run exceeded its deadline"})
    for shard, run_ids in zip(shards, due, strict=True):
        for run_id in run_ids:
            result = await scripts.run_script("end_run", run_id, "timed_out", error)
            if result[0] == "missing":
                await redis.zrem(keys.shard(shard).run_deadlines, run_id)
            elif result[0] == "ok":
                logger.info("run %s timed out", run_id)
    return sum(len(run_ids) for run_ids in due)
