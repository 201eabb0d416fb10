"""``aob dlq list|show|replay|discard`` against a served API and an engine that dead-letters a poisoned token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import served_api
from tests.support.cli import aob
from tests.support.dead_letters import FAST_DLQ, PoisonHandler, poison_type, poisoned
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually


@pytest.fixture
async def engine_and_url(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[Engine, str]]:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("AOB_API_URL", raising=False)
    monkeypatch.delenv("AOB_API_KEY", raising=False)
    fast = deployment.replace(**FAST_DLQ)
    with poison_type():
        async with (
            Engine(fast, redis, handlers=[PoisonHandler()], pool=pg_pool) as engine,
            served_api(fast.api(), redis, pg_pool) as url,
        ):
            yield engine, url


async def test_list_show_replay_discard(
    engine_and_url: tuple[Engine, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine, url = engine_and_url
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"name": "poisoned", **poisoned()}))
    assert (await aob(capsys, "login", "--url", url, "--key", ADMIN_KEY))[0] == 0
    assert (await aob(capsys, "workflows", "create", "-f", str(path)))[0] == 0
    run_id = json.loads((await aob(capsys, "runs", "start", "poisoned", "-o", "json"))[1])["id"]
    assert await engine.wait_ended(run_id) == "failed"

    async def listed() -> list[dict[str, Any]]:
        code, out, _ = await aob(capsys, "dlq", "list", "--run", run_id, "-o", "json")
        assert code == 0
        items: list[dict[str, Any]] = json.loads(out)["items"]
        return items

    [letter] = await eventually(listed)
    code, out, _ = await aob(capsys, "dlq", "list", "--kind", "token")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "KIND", "RUN_ID", "NODE_ID", "REASON", "AT"]
    assert letter["id"] in lines[1] and "token" in lines[1] and run_id in lines[1]

    code, out, _ = await aob(capsys, "dlq", "show", letter["id"])
    assert code == 0 and "kind: token" in out and f"run_id: {run_id}" in out and '"token_id": "0:p:1"' in out

    code, _, err = await aob(capsys, "dlq", "replay", letter["id"])
    assert code == 2 and "409 run_ended" in err and "resume the run instead" in err

    code, out, _ = await aob(capsys, "dlq", "discard", letter["id"])
    assert code == 0 and out.strip() == f"dead letter {letter['id']} discarded"
    code, _, err = await aob(capsys, "dlq", "show", letter["id"])
    assert code == 2 and "404 not_found" in err
    code, _, err = await aob(capsys, "dlq", "replay", "not-an-id")
    assert code == 2 and "422 validation_failed" in err and "expected a stream entry id" in err

    code, out, _ = await aob(capsys, "audit", "list")
    assert code == 0 and "dead_letter.discard" in out and letter["id"] in out
    assert json.loads((await aob(capsys, "dlq", "list", "-o", "json"))[1])["items"] == []
