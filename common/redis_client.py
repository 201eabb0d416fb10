"""Redis connections: one asyncio client per process, strings decoded as UTF-8."""

from __future__ import annotations

import redis.asyncio as aioredis


def connect_redis(url: str, *, max_connections: int = 64) -> aioredis.Redis:
    """Return a pooled asyncio client for ``url`` (hiredis parser when installed).

    The pool blocks when all connections are busy, so a burst of tasks waits instead of failing.
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=max_connections, timeout=None
    )
    return aioredis.Redis(connection_pool=pool)
