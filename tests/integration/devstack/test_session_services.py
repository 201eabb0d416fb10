"""`make test` on a machine where nothing answers at the default addresses: the session starts embedded servers,
exports their URLs for xdist workers and spawned services, and stops them at the end."""

from __future__ import annotations

import asyncio
import os

import asyncpg
import pytest
import redis.asyncio as aioredis

from devstack.embedded import free_port
from tests.support import session_services
from tests.support.session_services import DATABASE_VARIABLE, REDIS_VARIABLE, SessionServices, answers


async def test_servers_start_where_nothing_answers_and_stop_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_VARIABLE, raising=False)
    monkeypatch.delenv(DATABASE_VARIABLE, raising=False)
    monkeypatch.setattr(session_services, "DEFAULT_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(session_services, "DEFAULT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/x")
    services = SessionServices()
    redis_url, database_url = await asyncio.to_thread(services.urls)
    try:
        assert (redis_url, database_url) == (
            os.environ[REDIS_VARIABLE],
            os.environ[DATABASE_VARIABLE],
        )
        client = aioredis.Redis.from_url(redis_url)
        assert await client.ping()
        await client.aclose()
        conn = await asyncpg.connect(database_url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await asyncio.to_thread(services.stop)
    assert not answers(redis_url) and not answers(database_url)


def test_what_answers_or_is_configured_is_used_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REDIS_VARIABLE, "redis://elsewhere:6379/0")
    monkeypatch.setenv(DATABASE_VARIABLE, "postgresql://elsewhere/aob")
    services = SessionServices()
    assert services.urls() == ("redis://elsewhere:6379/0", "postgresql://elsewhere/aob")
    services.stop()
