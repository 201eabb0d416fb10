"""Redis connections: one asyncio client per process, strings decoded as UTF-8."""

from __future__ import annotations

import redis.asyncio as aioredis


def connect_redis(url: str, *, max_connections: int = 64) -> aioredis.Redis:
    """Return a pooled asyncio client for ``url`` (hiredis parser when installed)."""
    return aioredis.Redis.from_url(url, decode_responses=True, max_connections=max_connections)
