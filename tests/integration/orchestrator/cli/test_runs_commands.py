"""``aob runs list`` filters and ``aob runs resume --input`` against a served API with an engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.cli import aob
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually

DIVIDE: dict[str, Any] = {
    "name": "divide",
    "inputs": {"type": "object", "properties": {"total": {"type": "integer"}, "parts": {"type": "integer"}}},
    "nodes": [{"id": "share", "type": "transform", "config": {"output": "{{ inputs.total // inputs.parts }}"}}],
    "edges": [],
}


@pytest.fixture
async def api_url(
    api_url: str, deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> AsyncIterator[str]:
    """The conftest's logged-in API, with an engine running the runs."""
    async with Engine(deployment, redis, pool=pg_pool):
        yield api_url


async def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = await aob(capsys, *argv, "-o", "json")
    assert code == 0, err
    return json.loads(out)


async def test_resume_with_a_changed_input_keeps_the_others_and_list_filters(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "divide.json"
    definition.write_text(json.dumps(DIVIDE))
    assert (await aob(capsys, "workflows", "create", "-f", str(definition)))[0] == 0
    run = await _run(capsys, "runs", "start", "divide", "-i", "total=12", "-i", "parts=0")

    async def status(expected: str) -> bool:
        return bool((await _run(capsys, "runs", "status", run["id"]))["status"] == expected)

    async def listed_failed() -> list[str]:
        # The list reads what the recorder wrote to Postgres, a moment after the run's state changed.
        page = await _run(capsys, "runs", "list", "--status", "failed", "--status", "timed_out", "--source", "api")
        return [r["id"] for r in page["items"]]

    await eventually(lambda: status("failed"))
    assert await eventually(listed_failed) == [run["id"]]
    assert (await _run(capsys, "runs", "list", "--id-prefix", "zzz"))["items"] == []

    await _run(capsys, "runs", "resume", run["id"], "-i", "parts=3")
    await eventually(lambda: status("succeeded"))
    shown = await _run(capsys, "runs", "status", run["id"])
    assert shown["nodes"]["share"]["output"] == 4

    async def none_failed() -> bool:
        return await listed_failed() == []

    await eventually(none_failed)
