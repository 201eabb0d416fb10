"""The one clock of a deployment: the Redis server's, so due times and deadlines never depend on which process
computed them (the run-state scripts read the same clock with ``TIME``)."""

from __future__ import annotations

import redis.asyncio as aioredis


async def redis_now_ms(redis: aioredis.Redis) -> float:
    """The Redis server's time in epoch milliseconds (microsecond precision)."""
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) / 1000
