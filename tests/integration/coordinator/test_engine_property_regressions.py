"""Invariant violations test_engine_properties.py found, each reduced to a short deterministic history.

Each failed until its fix landed (a check a known bug breaks goes in ``invariants.KNOWN_OPEN``, which the property
and chaos tests then skip, and its test here is marked ``xfail(strict=True)`` until the fix). The engine is driven
step by step (``tests.support.stepped``), as the property test drives it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.runs.cancel import cancel_run
from common.runs.resume import resume_run
from tests.integration.coordinator.test_engine_properties import EngineHistories
from tests.support import invariants
from tests.support.deployment import Deployment
from tests.support.scripted import ScriptedHandler, scripted_type
from tests.support.shards import delayed_members, task_entries
from tests.support.stepped import SteppedEngine, open_world


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


def noop(node_id: str) -> dict[str, Any]:
    return {"id": node_id, "type": "noop", "config": {}}


def failing(node_id: str, attempts: int) -> dict[str, Any]:
    """A scripted node that fails its first ``attempts`` attempts, without retries."""
    return {"id": node_id, "type": "scripted", "config": {"fail_attempts": attempts, "retryable": False}}


def parallel(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"name": "t", "nodes": list(nodes), "edges": []}


async def test_a_run_failed_by_one_node_leaves_no_other_node_in_flight(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    async with SteppedEngine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.submit(parallel(failing("bad", 1), noop("other")))
        await engine.work("scripted", 1)
        await engine.coordinate(1)
        assert (await engine.run_hash(run_id))["status"] == "failed"
        # The worker drops the token of `other` (its run has ended) without a completion.
        await engine.settle()
        statuses = await engine.statuses(run_id)
        assert statuses == {"bad": "failed", "other": "cancelled"}


async def test_resuming_from_a_node_runs_the_nodes_a_cancel_stopped(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    async with SteppedEngine(deployment, redis) as engine:
        run_id = await engine.submit(parallel(noop("n0"), noop("n1"), noop("n2")))
        assert await cancel_run(engine.scripts, run_id) == "ok"
        assert (await resume_run(engine.scripts, run_id, from_node="n0")).status == "ok"
        await engine.settle()
        state = await invariants.read_run(engine, run_id)
        assert state.status == "succeeded"
        assert {node_id: node["status"] for node_id, node in state.nodes.items()} == dict.fromkeys(
            ["n0", "n1", "n2"], "succeeded"
        )


async def test_resuming_from_another_node_does_not_make_an_unhandled_failure_succeed(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    async with SteppedEngine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        # `bad` fails on its first two attempts: whether it runs again or not, the run must not succeed.
        run_id = await engine.submit(parallel(noop("n0"), failing("bad", 2)))
        await engine.settle()
        assert (await engine.run_hash(run_id))["status"] == "failed"
        assert (await resume_run(engine.scripts, run_id, from_node="n0")).status == "ok"
        await engine.settle()
        state = await invariants.read_run(engine, run_id)
        assert invariants.ended_run(state) == []
        assert state.status == "failed"


async def test_a_resumed_delay_node_waits_again(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with SteppedEngine(deployment, redis) as engine:
        run_id = await engine.submit(parallel({"id": "wait", "type": "delay", "config": {"seconds": 3600}}))
        assert await cancel_run(engine.scripts, run_id) == "ok"
        assert (await resume_run(engine.scripts, run_id)).status == "ok"
        waiting = [json.loads(body)["token_id"] for body in await delayed_members(redis, engine.keys)]
        assert "1:wait:2" in waiting
        assert await task_entries(redis, engine.keys, "builtin") == []


# Histories test_engine_properties.py found for bugs of issue 13 (their own regression tests are in
# test_exactly_once.py), replayed with every check held.
class EveryCheck(EngineHistories):
    checks = invariants.CHECKS


@pytest.fixture
def history(deployment: Deployment) -> Iterator[EngineHistories]:
    with open_world(deployment) as world:
        yield type("History", (EveryCheck,), {"world": world})()


def test_history_where_a_token_of_a_cancelled_epoch_runs_after_the_resume(history: EngineHistories) -> None:
    run = history.start(dag=parallel(noop("n0"), noop("n1"), noop("n2")))
    history.cancel_and_resume(run=run, pick=None)
    history.settle()
    history.always()


def test_history_where_a_resume_and_the_end_that_follows_are_recorded_together(history: EngineHistories) -> None:
    run = history.start(dag=parallel(noop("n0"), noop("n1"), noop("n2")))
    history.settle()
    history.record()
    # Resuming a run that succeeded resets nothing: it succeeds again at once, in the same recorder batch.
    history.resume(run=run, pick=None)
    history.record()
