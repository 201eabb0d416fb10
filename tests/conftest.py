"""Fixtures for real Redis and Postgres, isolated per test by a key prefix and a schema."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from common.redis_client import connect_redis
from tests.support.deployment import ADMIN_KEY, SECRETS_KEY, Deployment
from tests.support.session_services import SESSION_SERVICES

# Resolved when pytest loads this file, before xdist starts its workers: they inherit what was exported.
REDIS_URL, DATABASE_URL = SESSION_SERVICES.urls()


def pytest_unconfigure(config: pytest.Config) -> None:
    SESSION_SERVICES.stop()


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(prefix=key_prefix)


@pytest.fixture
async def redis(key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(REDIS_URL)
    yield client
    # Keys with a hash tag put the braces after the prefix, so one pattern finds every key of the test.
    batch = [k async for k in client.scan_iter(match=f"{key_prefix}*", count=1000)]
    if batch:
        await client.delete(*batch)
    await client.aclose()


@pytest.fixture
async def db_schema() -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f"CREATE SCHEMA {schema}")
        yield schema
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


@pytest.fixture
async def migrated_schema(db_schema: str) -> str:
    from common.db import migrate

    await migrate(DATABASE_URL, db_schema)
    return db_schema


@pytest.fixture
async def pg_pool(migrated_schema: str) -> AsyncIterator[asyncpg.Pool]:
    from common.db import create_pool

    pool = await create_pool(DATABASE_URL, migrated_schema)
    yield pool
    await pool.close()


@pytest.fixture
def deployment(key_prefix: str, migrated_schema: str) -> Deployment:
    return Deployment(
        {
            "redis_url": REDIS_URL,
            "database_url": DATABASE_URL,
            "key_prefix": key_prefix,
            "db_schema": migrated_schema,
            "admin_key": ADMIN_KEY,
            "secrets_keys": SECRETS_KEY,
            "visibility_timeout_s": 5.0,
            "coordinator_heartbeat_s": 1.0,
            "timer_interval_s": 0.05,
            "coordinator_block_s": 0.2,
            "worker_block_ms": 200,
            "log_json": False,
        }
    )
