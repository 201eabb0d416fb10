"""The ``aob`` user commands against a served API: login (0600), whoami, workflows, runs, one-line errors."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import chain_definition, served_api
from tests.support.cli import aob
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine


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
    async with Engine(deployment, redis, pool=pg_pool), served_api(deployment.api(), redis, pg_pool) as url:
        yield url


async def test_cli_round_trip(api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await aob(capsys, "whoami")
    assert code == 2 and "not logged in" in err
    code, out, _ = await aob(capsys, "login", "--url", api_url, "--key", ADMIN_KEY)
    assert code == 0 and "logged in" in out
    credentials = tmp_path / "config" / "aob" / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    code, out, _ = await aob(capsys, "whoami", "--output", "json")
    assert json.loads(out)["tenant_id"] == "default"

    definition = tmp_path / "wf.json"
    definition.write_text(json.dumps({"name": "team/cli", **chain_definition(2)}))
    assert (await aob(capsys, "workflows", "create", "-f", str(definition)))[0] == 0
    code, out, _ = await aob(capsys, "workflows", "list")
    assert code == 0 and "team/cli" in out and out.splitlines()[0].startswith("ID")
    ops = tmp_path / "ops.json"
    ops.write_text(json.dumps([{"op": "add", "path": "/nodes/-", "value": {"id": "x", "type": "noop"}}]))
    code, out, _ = await aob(capsys, "workflows", "patch", "team/cli", "-f", str(ops), "-o", "json")
    assert code == 0 and json.loads(out)["version"] == 2
    code, out, _ = await aob(capsys, "workflows", "versions", "team/cli")
    assert code == 0 and len(out.strip().splitlines()) == 3

    code, out, _ = await aob(capsys, "runs", "start", "team/cli", "--input", "n=3", "--input", "s=hi", "-o", "json")
    run = json.loads(out)
    assert code == 0 and run["inputs"] == {"n": 3, "s": "hi"}
    code, out, _ = await aob(capsys, "runs", "status", run["id"])
    assert code == 0 and run["id"] in out
    code, out, _ = await aob(capsys, "runs", "list", "-o", "json")
    assert [r["id"] for r in json.loads(out)["items"]] == [run["id"]]

    code, _, err = await aob(capsys, "workflows", "show", "missing")
    assert code == 2 and err.strip() == "aob: 404 not_found: workflow 'missing' not found"
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    code, _, err = await aob(capsys, "workflows", "create", "-f", str(bad))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "expected JSON" in err
