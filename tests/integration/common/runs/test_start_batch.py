"""StartBatcher: concurrent starts share script calls, each waiter gets its own run's status, failures reach all."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from common.runs import start_batch
from common.runs.scripts import Scripts
from common.runs.start import RunStart
from common.runs.start_batch import StartBatcher
from common.workflow.compiler import compile_definition
from common.workflow.ir import IR

CHAIN = compile_definition(
    {
        "name": "chain",
        "nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}],
        "edges": [{"from": "a", "to": "b"}],
    }
).ir


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sizes: list[int] = []
    real = start_batch.start_runs

    async def counted(scripts: Scripts, starts: Sequence[tuple[RunStart, IR]], **kwargs: Any) -> list[str]:
        sizes.append(len(starts))
        return await real(scripts, starts, **kwargs)

    monkeypatch.setattr(start_batch, "start_runs", counted)
    return sizes


async def test_a_burst_of_starts_shares_few_calls_and_every_run_starts(
    redis: aioredis.Redis, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes = _counting(monkeypatch)
    batcher = StartBatcher(Scripts(redis, keys), max_agents=10, max_batch=16)
    ids = [f"burst-{n}" for n in range(40)]
    statuses = await asyncio.gather(*(batcher.start(RunStart(i, "acme", "wf", "chain", 1, {}), CHAIN) for i in ids))
    assert statuses == ["running"] * 40
    assert sum(sizes) == 40 and len(sizes) < 40 and max(sizes) <= 16
    for run_id in ids:
        assert await redis.hget(keys.run(run_id), "status") == "running"
    # Alone, a start is its own call at once.
    assert await batcher.start(RunStart("alone", "acme", "wf", "chain", 1, {}), CHAIN) == "running"
    assert sizes[-1] == 1


async def test_a_failed_call_fails_every_start_of_its_batch(keys: Keys) -> None:
    gone = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    batcher = StartBatcher(Scripts(gone, keys), max_agents=10)
    results = await asyncio.gather(
        *(batcher.start(RunStart(f"lost-{n}", "acme", "wf", "chain", 1, {}), CHAIN) for n in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(result, aioredis.ConnectionError) for result in results), results
    await gone.aclose()
