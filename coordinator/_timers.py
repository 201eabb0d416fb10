"""The coordinator's timers: due delayed tokens back to their streams, and runs past their deadline."""

from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.clock import redis_now_ms
from common.runs.scripts import Scripts

logger = logging.getLogger(__name__)

MOVE_BATCH = 500


async def move_due_tokens(scripts: Scripts) -> int:
    """Move every due token of ``wf.delayed`` to its task stream; returns how many moved."""
    total = 0
    while True:
        moved = await scripts.move_due(MOVE_BATCH)
        total += moved
        if moved < MOVE_BATCH:
            return total


async def time_out_runs(redis: aioredis.Redis, scripts: Scripts, keys: Keys) -> int:
    """End every run past its deadline as ``timed_out``; returns how many ended."""
    due = await redis.zrangebyscore(keys.run_deadlines, "-inf", await redis_now_ms(redis), start=0, num=100)
    for run_id in due:
        error = json.dumps({"type": "run_timeout", "message": "run exceeded its deadline"})
        result = await scripts.run_script("end_run", run_id, "timed_out", error)
        if result[0] == "missing":
            await redis.zrem(keys.run_deadlines, run_id)
        elif result[0] == "ok":
            logger.info("run %s timed out", run_id)
    return len(due)
