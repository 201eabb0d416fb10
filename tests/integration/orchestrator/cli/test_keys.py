"""``aob keys create|list|revoke`` against a served API: roles, owners, and a revoked key stops working."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import served_api
from tests.support.cli import aob
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
    monkeypatch.delenv("AOB_API_URL", raising=False)
    monkeypatch.delenv("AOB_API_KEY", raising=False)
    async with served_api(deployment.api(), redis, pg_pool) as url:
        yield url


async def test_create_list_revoke(
    api_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await aob(capsys, "login", "--url", api_url, "--key", ADMIN_KEY))[0] == 0
    code, out, _ = await aob(capsys, "keys", "create", "laptop", "--role", "approver", "--owner", "sam", "-o", "json")
    created = json.loads(out)
    assert code == 0 and (created["name"], created["owner"], created["role"]) == ("laptop", "sam", "approver")
    code, out, _ = await aob(capsys, "keys", "create", "viewer-bot", "--role", "viewer")
    assert code == 0 and "owner viewer-bot, role viewer" in out and out.splitlines()[1].startswith("aob_")
    code, _, err = await aob(capsys, "keys", "create", "admin")
    assert code == 2 and "422" in err and "'admin' is a role name" in err

    code, out, _ = await aob(capsys, "keys", "list")
    assert code == 0 and out.splitlines()[0].split() == ["ID", "NAME", "OWNER", "ROLE", "CREATED_AT", "REVOKED_AT"]
    [row] = [line.split() for line in out.splitlines() if created["id"] in line]
    assert row[:4] == [created["id"], "laptop", "sam", "approver"]

    monkeypatch.setenv("AOB_API_URL", api_url)
    monkeypatch.setenv("AOB_API_KEY", created["key"])
    code, out, _ = await aob(capsys, "whoami", "-o", "json")
    assert code == 0 and json.loads(out)["owner"] == "sam"
    code, _, err = await aob(capsys, "keys", "list")
    assert code == 2 and "403 forbidden" in err and "has role 'approver'" in err

    monkeypatch.setenv("AOB_API_KEY", ADMIN_KEY)
    assert (await aob(capsys, "keys", "revoke", created["id"]))[0] == 0
    code, _, err = await aob(capsys, "keys", "revoke", created["id"])
    assert code == 2 and "404" in err
    monkeypatch.setenv("AOB_API_KEY", created["key"])
    code, _, err = await aob(capsys, "whoami")
    assert code == 2 and "401" in err
