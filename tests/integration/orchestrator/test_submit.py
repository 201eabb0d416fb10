"""Submission when the process dies between the ``runs`` insert and the engine's start (issue 13)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.runs.start_batch import StartBatcher
from common.runs.stranded import start_stranded_runs
from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool) as client:
        yield client


async def _submit_and_lose_the_start(api: Api, monkeypatch: pytest.MonkeyPatch, key: str) -> str:
    async def lost(*args: Any, **kwargs: Any) -> str:
        raise ConnectionError("the API process died here")

    await api.create_workflow("w", chain_definition(2))
    body = {"workflow_id": "w", "inputs": {}}
    with monkeypatch.context() as patched:
        patched.setattr(StartBatcher, "start", lost)
        with contextlib.suppress(ConnectionError):
            await api.request("POST", "/api/v1/runs", json=body, headers={"Idempotency-Key": key})
    assert api.engine is not None and api.engine.pool is not None
    run_id: str = await api.engine.pool.fetchval("SELECT id FROM runs WHERE idempotency_key = $1", key)
    return run_id


async def test_the_idempotent_retry_starts_a_run_whose_start_was_lost(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = await _submit_and_lose_the_start(api, monkeypatch, "k-retry")
    body = {"workflow_id": "w", "inputs": {}}
    replay = await api.request("POST", "/api/v1/runs", json=body, headers={"Idempotency-Key": "k-retry"})
    assert replay.status_code in (200, 201) and replay.json()["id"] == run_id
    assert (await api.wait_run(run_id))["status"] == "succeeded"


async def test_the_reconciler_starts_a_run_whose_start_was_lost(
    api: Api, monkeypatch: pytest.MonkeyPatch, pg_pool: asyncpg.Pool
) -> None:
    run_id = await _submit_and_lose_the_start(api, monkeypatch, "k-reconcile")
    assert api.engine is not None
    started = await start_stranded_runs(api.engine.scripts, pg_pool, older_than_s=0, max_agents=5)
    assert started == [run_id]
    assert await start_stranded_runs(api.engine.scripts, pg_pool, older_than_s=0, max_agents=5) == []
    assert (await api.wait_run(run_id))["status"] == "succeeded"
