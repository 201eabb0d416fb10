"""The coordinator's own loops (signals, heartbeat, timers): a Redis outage is retried and counted, never fatal."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from common.metrics import Metrics
from coordinator import Coordinator
from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain
from tests.support.faults import Flaky, errors
from workers import Worker
from workers.builtin import BuiltinHandler


async def test_redis_errors_in_every_loop_are_retried_and_counted(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    engine = Engine(deployment, redis)  # not started: this test's coordinator and worker serve its runs
    metrics = Metrics()
    # Taking signals, the heartbeat's pipeline and the timers' scripts each meet an outage.
    flaky = Flaky(Flaky(Flaky(redis, "blmove", times=3), "pipeline", times=2), "zrangebyscore", times=2)
    coordinator = Coordinator(deployment.coordinator(), flaky, metrics=metrics)
    worker = Worker(deployment.worker(), redis, [BuiltinHandler()])
    await worker.ensure_groups()
    tasks = [asyncio.create_task(coordinator.run()), asyncio.create_task(worker.run())]
    try:
        delay = {"name": "d", "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 0.2}}], "edges": []}
        runs = [await engine.submit(chain(3)) for _ in range(3)] + [await engine.submit(delay)]
        for run_id in runs:
            assert await engine.wait_ended(run_id) == "succeeded"
        assert not any(task.done() for task in tasks)
    finally:
        await coordinator.shutdown()
        await worker.shutdown()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
    assert errors(metrics, "coordinator", "signals") >= 3
    assert errors(metrics, "coordinator", "heartbeat") + errors(metrics, "coordinator", "timers") >= 2
