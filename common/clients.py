"""The Redis client and Postgres pool a service runs with: given ones, or new ones it owns and closes."""

from __future__ import annotations

from contextlib import AsyncExitStack

import asyncpg
import redis.asyncio as aioredis

from common.db import create_pool
from common.errors import ConfigError
from common.redis_client import connect_redis
from common.settings import CommonSettings


async def open_clients(
    stack: AsyncExitStack,
    settings: CommonSettings,
    service: str,
    *,
    redis: aioredis.Redis | None = None,
    pool: asyncpg.Pool | None = None,
) -> tuple[aioredis.Redis, asyncpg.Pool]:
    """``redis`` and ``pool``, or new ones from ``settings`` that ``stack`` closes; Redis must answer a ping.

    Raises ``ConfigError`` naming the missing URL variable.
    """
    if redis is None:
        redis = connect_redis(
            required_url(settings.redis_url, "AOB_REDIS_URL", service), cluster=settings.redis_cluster
        )
        stack.push_async_callback(redis.aclose)
    if pool is None:
        pool = await create_pool(required_url(settings.database_url, "AOB_DATABASE_URL", service), settings.db_schema)
        stack.push_async_callback(pool.close)
    # Fail at start, not on the first request, when Redis does not answer.
    await redis.ping()
    return redis, pool


def required_url(value: str | None, variable: str, service: str) -> str:
    """``value``, or ``ConfigError`` naming ``variable`` when it is unset."""
    if not value:
        raise ConfigError(f"{variable}: required by the {service} (got nothing; aob up sets it)")
    return value
