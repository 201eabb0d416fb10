"""A cancelled task stops: no Redis call of ours may swallow the cancel.

redis-py 8 sends every command under ``asyncio.wait_for`` when a socket timeout is set (its default became 5 s), and
on Python 3.11 ``wait_for`` drops a cancel that arrives as the send finishes. A task cancelled there went on running:
an agent node's log flusher kept flushing, the node never ended, and neither did its run.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from typing import Any

from common.events.hub import Hub
from common.events.reader import StreamReader
from common.redis_client import connect_redis

TRIALS = 300


async def cancel_repeatedly(start: Callable[[], Coroutine[Any, Any, None]], trials: int = TRIALS) -> None:
    """Start a task with ``start()`` and cancel it after a random moment, ``trials`` times; each must end cancelled."""
    rng = random.Random(7)
    for trial in range(trials):
        task = asyncio.create_task(start())
        await asyncio.sleep(rng.random() * 0.002)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        if not done:
            await stop(task)
        assert done, f"trial {trial}: the task went on running after its cancel"
        assert task.cancelled(), f"trial {trial}: the task ended without being cancelled: {task}"


async def stop(task: asyncio.Future[None]) -> None:
    """Cancel ``task`` until it ends, so a failed trial does not leave it running past the test."""
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)


async def test_a_task_calling_redis_in_a_loop_stops_when_cancelled(redis_url: str, key_prefix: str) -> None:
    redis = connect_redis(redis_url)
    script = redis.register_script("return redis.call('INCR', KEYS[1])")

    async def calls() -> None:
        while True:
            await redis.get(f"{key_prefix}:absent")
            await script(keys=[f"{key_prefix}:counter"])

    try:
        await cancel_repeatedly(calls)
    finally:
        await redis.delete(f"{key_prefix}:counter")
        await redis.aclose()


async def test_the_event_readers_blocking_read_stops_when_cancelled(redis_url: str, key_prefix: str) -> None:
    redis = connect_redis(redis_url)
    stream = f"{key_prefix}:events"
    await redis.xadd(stream, {"e": "{}"})
    hub = Hub(queue_size=100)
    reader = StreamReader(hub, redis, block_ms=50, batch=10)
    hub.subscribe(stream)

    try:
        await cancel_repeatedly(reader.run, trials=100)
    finally:
        await reader.aclose()
        await redis.delete(stream)
        await redis.aclose()
