"""The wf.children consumer under outages: Redis errors are retried and counted, and never stop it."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.runs.cas import Cas
from common.workflow.child_run_limits import ChildRunLimits
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.faults import Flaky, errors
from workers.control import ChildrenConsumer, ControlHandler
from workers.control._advance import Advancer
from workers.control._bodies import BodyResolver
from workers.control._state import ControlStore


def double_each(items: list[int]) -> dict[str, Any]:
    body = {
        "name": "double",
        "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.x + inputs.x }}"}}],
        "outputs": {"y": "{{ nodes.t.output }}"},
    }
    config = {"items": items, "body": body, "inputs": {"x": "{{ item }}"}}
    return {"name": "fan", "nodes": [{"id": "each", "type": "map", "config": config}]}


async def test_redis_errors_are_retried_and_counted(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    local = deployment.replace(control_sweep_interval_s=0.2, control_block_ms=100)
    settings = local.worker()
    keys = Keys(settings.key_prefix)
    metrics = Metrics()
    # The sweeper lists waiting nodes with SSCAN; the consumer reads with XREADGROUP: both meet an outage.
    store = ControlStore(Flaky(redis, "sscan_iter", times=2), keys)
    advancer = Advancer(redis, keys, store, Cas(redis, keys, pg_pool), settings)
    handler = ControlHandler(
        redis, keys, store, advancer, BodyResolver(pg_pool, 5, ChildRunLimits.of(settings)), settings
    )
    consumer = ChildrenConsumer(Flaky(redis, "xreadgroup", times=3), keys, store, advancer, settings, "ctl-1",
                                metrics=metrics)  # fmt: skip
    async with Engine(local, redis, handlers=[handler], pool=pg_pool) as engine:
        following = asyncio.create_task(consumer.run())
        try:
            run_id = await engine.submit(double_each([1, 2, 3]))
            assert await engine.wait_ended(run_id) == "succeeded"
            assert await engine.output(run_id, "each") == {"results": [{"y": 2}, {"y": 4}, {"y": 6}], "errors": []}
            assert not following.done()
        finally:
            await consumer.shutdown()
            await asyncio.wait_for(following, 10)
    assert errors(metrics, "children", "read") == 3
    assert errors(metrics, "children-sweeper", "sweep") == 2
