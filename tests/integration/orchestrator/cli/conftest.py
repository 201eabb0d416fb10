"""The API the CLI tests talk to: served on a free port, the CLI logged in as the bootstrap admin through
``AOB_API_URL`` / ``AOB_API_KEY``, its config in the test's own directory. Files that need another setup (no
login, an engine running the runs) define their own ``api_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import served_api
from tests.support.deployment import ADMIN_KEY, Deployment


@pytest.fixture
async def api_url(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[str]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("AOB_API_KEY", ADMIN_KEY)
    async with served_api(deployment.api(), redis, pg_pool) as url:
        monkeypatch.setenv("AOB_API_URL", url)
        yield url
