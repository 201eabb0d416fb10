"""The API the CLI tests talk to: served on a free port, the CLI logged in as the bootstrap admin through
``AOB_API_URL`` / ``AOB_API_KEY``, its config in the test's own directory. A file that needs other settings
overrides ``api_deployment``; one that needs another setup (no login, an engine running the runs) its own
``api_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import served_api
from tests.support.deployment import ADMIN_KEY, Deployment


@pytest.fixture
def api_deployment(deployment: Deployment) -> Deployment:
    """The deployment the API is served with; a file whose commands need other settings overrides it."""
    return deployment


@pytest.fixture
async def api_url(
    api_deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[str]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("AOB_API_KEY", ADMIN_KEY)
    async with served_api(api_deployment.api(), redis, pg_pool) as url:
        monkeypatch.setenv("AOB_API_URL", url)
        yield url
