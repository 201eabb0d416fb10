"""``aob approvals list``, ``aob approve``, ``aob reject`` against a served API and a running engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from tests.support.api import served_api
from tests.support.cli import aob
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.hitl import HitlHandler


@pytest.fixture
async def api_url(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    keys: Keys,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[str]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("AOB_API_URL", raising=False)
    monkeypatch.delenv("AOB_API_KEY", raising=False)
    handlers = [HitlHandler(pg_pool, redis, keys)]
    async with (
        Engine(deployment, redis, handlers=handlers, pool=pg_pool),
        served_api(deployment.api(), redis, pg_pool) as url,
    ):
        yield url


async def test_list_approve_reject(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    definition = {
        "name": "gated",
        "nodes": [
            {"id": "gate", "type": "hitl", "config": {"title": "Deploy?", "required_approvals": 2}},
            {"id": "deploy", "type": "noop", "config": {}},
        ],
        "edges": [{"from": "gate", "to": "deploy", "branch": "approved"}],
    }
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(definition))
    assert (await aob(capsys, "login", "--url", api_url, "--key", ADMIN_KEY))[0] == 0
    assert (await aob(capsys, "workflows", "create", "-f", str(path)))[0] == 0
    code, out, _ = await aob(capsys, "runs", "start", "gated", "-o", "json")
    run_id = json.loads(out)["id"]

    async def listed() -> list[dict[str, str]]:
        code, out, _ = await aob(capsys, "approvals", "list", "--run", run_id, "-o", "json")
        assert code == 0
        items: list[dict[str, str]] = json.loads(out)["items"]
        return items

    [approval] = await eventually(listed)
    code, out, _ = await aob(capsys, "approvals", "list")
    assert code == 0 and out.splitlines()[0].startswith("ID") and approval["id"] in out and "Deploy?" in out

    code, _, err = await aob(capsys, "approve", approval["id"])
    assert code == 2 and "403 forbidden" in err and "allow_self_approval is false" in err

    async with httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as admin:
        created = [(await admin.post("/api/v1/api-keys", json={"name": n, "role": "editor"})).json() for n in "ab"]
    monkeypatch.setenv("AOB_API_URL", api_url)
    monkeypatch.setenv("AOB_API_KEY", created[0]["key"])
    code, out, _ = await aob(capsys, "approve", approval["id"], "--comment", "fine by me")
    assert (code, out.strip()) == (0, f"approval {approval['id']} of run {run_id}: pending (1/2 approvals)")
    monkeypatch.setenv("AOB_API_KEY", created[1]["key"])
    code, out, _ = await aob(capsys, "reject", approval["id"], "-m", "not today")
    assert (code, out.strip()) == (0, f"approval {approval['id']} of run {run_id}: rejected")
    code, _, err = await aob(capsys, "approve", approval["id"])
    assert code == 2 and "409 conflict" in err and "already rejected" in err

    code, out, _ = await aob(capsys, "approvals", "list", "--status", "all", "--run", run_id, "-o", "json")
    [settled] = json.loads(out)["items"]
    assert [(d["decided_by"], d["comment"]) for d in settled["decisions"]] == [("a", "fine by me"), ("b", "not today")]
