"""The periodic task: runs at once and then on its interval, backs off after failures, stops on shutdown."""

from __future__ import annotations

import asyncio

from redis.exceptions import ConnectionError as RedisConnectionError

from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.retry import Backoff, Retry
from tests.support.eventually import eventually
from tests.support.faults import errors


async def test_failures_are_retried_counted_and_never_end_the_task() -> None:
    metrics = Metrics()
    calls = 0

    async def sweep() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise RedisConnectionError("down")

    retry = Retry("sweeper", metrics=metrics, backoff=Backoff(base_s=0.001, cap_s=0.002))
    task = PeriodicTask(sweep, 0.01, retry=retry, stage="sweep")
    running = asyncio.create_task(task.run())

    async def healthy_twice() -> bool:
        return calls >= 5

    await eventually(healthy_twice)
    assert not running.done()
    async with task:
        pass
    await asyncio.wait_for(running, 1)
    assert errors(metrics, "sweeper", "sweep") == 3


async def test_shutdown_lets_the_call_in_progress_finish() -> None:
    started, finish = asyncio.Event(), asyncio.Event()
    finished = []

    async def slow() -> None:
        started.set()
        await finish.wait()
        finished.append(True)

    task = PeriodicTask(slow, 60, retry=Retry("slow"), stage="run")
    running = asyncio.create_task(task.run())
    await started.wait()
    await task.shutdown()
    await task.shutdown()
    finish.set()
    await asyncio.wait_for(running, 1)
    assert finished == [True]
