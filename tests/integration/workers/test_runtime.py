"""The worker runtime on the shared consumer: outages are retried and counted, shutdown leaves work for a peer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.metrics import Metrics
from coordinator import Coordinator
from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain
from tests.support.eventually import eventually
from tests.support.faults import Flaky, errors
from tests.support.scripted import ScriptedHandler, scripted_type
from workers import Worker
from workers.builtin import BuiltinHandler


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


def transactions(*args: Any, **kwargs: Any) -> bool:
    return kwargs.get("transaction") is True


async def test_redis_errors_are_retried_counted_and_never_stop_the_worker(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    engine = Engine(deployment, redis)  # not started: this test's worker and coordinator serve its runs
    metrics = Metrics()
    # Reads fail, then the completion transactions (MULTI: push completions, XACK, XDEL) fail.
    flaky = Flaky(Flaky(redis, "xreadgroup", times=2), "pipeline", times=2, matching=transactions)
    worker = Worker(deployment.worker(), flaky, [BuiltinHandler()], metrics=metrics)
    coordinator = Coordinator(deployment.coordinator(), redis)
    serving = [asyncio.create_task(worker.run()), asyncio.create_task(coordinator.run())]
    try:
        run_id = await engine.submit(chain(3))
        assert await engine.wait_ended(run_id) == "succeeded"
        assert not any(task.done() for task in serving)
    finally:
        await worker.shutdown()
        await coordinator.shutdown()
        await asyncio.wait_for(asyncio.gather(*serving), 10)
    assert errors(metrics, "worker.builtin", "read") == 2
    assert errors(metrics, "worker.builtin", "complete") == 2
    assert (await engine.event_types(run_id)).count("node_succeeded") == 3


async def test_a_token_outliving_the_grace_period_is_left_to_a_peer(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    local = deployment.replace(shutdown_grace_s=0.2, visibility_timeout_s=1.0)
    settings = local.worker()
    engine = Engine(local, redis)
    coordinator = Coordinator(local.coordinator(), redis)
    first_handler = ScriptedHandler()
    first = Worker(settings, redis, [first_handler], worker_id="first")
    serving = [asyncio.create_task(coordinator.run()), asyncio.create_task(first.run())]
    definition = {"name": "slow", "nodes": [{"id": "slow", "type": "scripted", "config": {"sleep_s": 1.5}}]}
    run_id = await engine.submit(definition)

    async def running() -> bool:
        return (await engine.statuses(run_id)).get("slow") == "running"

    await eventually(running)
    await first.shutdown()
    await asyncio.wait_for(serving.pop(), 5)
    stream = engine.keys.shard_for(run_id).tasks("scripted")
    [entry] = await redis.xpending_range(stream, engine.keys.workers_group("scripted"), min="-", max="+", count=5)
    assert entry["consumer"] == "first"

    second = Worker(settings, redis, [ScriptedHandler()], worker_id="second")
    serving.append(asyncio.create_task(second.run()))
    try:
        assert await engine.wait_ended(run_id) == "succeeded"
        assert (await engine.node_states(run_id))["slow"]["worker_id"] == "second"
    finally:
        await second.shutdown()
        await coordinator.shutdown()
        await asyncio.wait_for(asyncio.gather(*serving), 10)
