"""One clock: deadlines and due times come from Redis, whichever process computes them (issue 13)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import redis.asyncio as aioredis

from common.runs.clock import redis_now_ms
from tests.support.deployment import Deployment
from tests.support.engine import Engine

WAIT = {"name": "t", "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 0.5}}], "edges": []}


@contextmanager
def clock_behind(seconds: float) -> Iterator[None]:
    """This process's clock runs ``seconds`` behind everyone else's while the block runs."""
    real = time.time
    with mock.patch("time.time", lambda: real() - seconds):
        yield


async def test_redis_now_is_the_servers_time(redis: aioredis.Redis) -> None:
    assert abs(await redis_now_ms(redis) - time.time() * 1000) < 5_000


async def test_a_run_started_by_a_process_with_a_slow_clock_keeps_its_deadline(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    async with Engine(deployment, redis) as engine:
        with clock_behind(3600):
            run_id = await engine.submit(WAIT, timeout_s=60)
        assert await engine.wait_ended(run_id) == "succeeded"
