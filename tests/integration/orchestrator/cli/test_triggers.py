"""``aob triggers create|list|rotate|retire|delete`` against a served API: the secret printed once works at the
hook, rotation keeps both secrets valid until the old one is retired."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from tests.support.api import served_api
from tests.support.cli import aob
from tests.support.deployment import ADMIN_KEY, Deployment

GREETING = {
    "name": "greet",
    "definition": {"nodes": [{"id": "hello", "type": "noop"}], "edges": []},
}


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


async def test_create_list_rotate_retire_delete(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert (await aob(capsys, "login", "--url", api_url, "--key", ADMIN_KEY))[0] == 0
    async with httpx.AsyncClient(base_url=api_url) as http:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        assert (await http.post("/api/v1/workflows", json=GREETING, headers=admin)).status_code == 201

        code, out, _ = await aob(capsys, "triggers", "create", "greet", "--auth", "bearer", "--map", "who={{ body.a }}")
        assert code == 0 and "/api/v1/hooks/trg_" in out
        first = out.splitlines()[1]
        trigger_id = out.split()[1]
        hook = f"/api/v1/hooks/{trigger_id}"

        code, out, _ = await aob(capsys, "triggers", "list", "-o", "json")
        [listed] = json.loads(out)["items"]
        assert code == 0 and listed["id"] == trigger_id and listed["input_mapping"] == {"who": "{{ body.a }}"}

        code, out, _ = await aob(capsys, "triggers", "rotate", trigger_id, "-o", "json")
        second = json.loads(out)["secret"]
        for secret in (first, second):
            answer = await http.post(hook, json={"a": 1}, headers={"Authorization": f"Bearer {secret}"})
            assert answer.status_code == 202, answer.text
        code, out, _ = await aob(capsys, "triggers", "retire", trigger_id)
        assert code == 0 and "retired 1" in out
        assert (await http.post(hook, json={}, headers={"Authorization": f"Bearer {first}"})).status_code == 401

        code, _, err = await aob(capsys, "triggers", "create", "greet", "--map", "nonsense")
        assert code != 0 and "INPUT=TEMPLATE" in err
        assert (await aob(capsys, "triggers", "delete", trigger_id))[0] == 0
        code, _, err = await aob(capsys, "triggers", "delete", trigger_id)
        assert code == 2 and "404" in err
