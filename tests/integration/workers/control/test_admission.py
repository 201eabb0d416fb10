"""Child runs wait for admission while their node has another child running, so a full tenant slows a map
down instead of failing or deadlocking it."""

from __future__ import annotations

from contextlib import AsyncExitStack

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.control import control_handler


def _paused_double() -> dict[str, object]:
    return {
        "name": "double",
        "nodes": [
            {"id": "pause", "type": "delay", "config": {"seconds": 0.05}},
            {"id": "t", "type": "transform", "config": {"output": "{{ inputs.x + inputs.x }}"}},
        ],
        "edges": [{"from": "pause", "to": "t"}],
        "outputs": {"y": "{{ nodes.t.output }}"},
    }


async def test_a_map_beyond_the_active_cap_runs_its_items_a_few_at_a_time(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    # One slot (the engine starts the root without admission): the children run one at a time, each waiting for
    # the last to end and leave the active runs.
    deployment = deployment.replace(
        max_active_runs_per_tenant=1, child_admission_wait_s=0, control_sweep_interval_s=0.05, control_block_ms=100
    )
    items = {"items": [1, 2, 3, 4], "body": _paused_double(), "concurrency": 4, "inputs": {"x": "{{ item }}"}}
    definition = {"name": "fan", "nodes": [{"id": "each", "type": "map", "config": items}]}
    async with AsyncExitStack() as stack:
        control = await stack.enter_async_context(control_handler(deployment.worker(), pg_pool, redis))
        engine = await stack.enter_async_context(Engine(deployment, redis, handlers=[control], pool=pg_pool))
        run_id = await engine.submit(definition)
        assert await engine.wait_ended(run_id) == "succeeded"
        output = await engine.output(run_id, "each")

        async def released() -> bool:  # the coordinator's timer empties the shards' ended-run outboxes
            return await redis.zcard(keys.tenant_active_runs("tenant-test")) == 0

        await eventually(released)
    assert output == {"results": [{"y": 2}, {"y": 4}, {"y": 6}, {"y": 8}], "errors": []}
