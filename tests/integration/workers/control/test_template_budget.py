"""Control nodes render map items, loop conditions and child inputs under the worker's template settings."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from tests.support.deployment import Deployment
from tests.support.engine import Engine
from workers.control import control_handler


async def test_map_items_render_under_the_workers_template_budget(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    deployment = deployment.replace(control_sweep_interval_s=0.2, control_block_ms=100, template_max_value_chars=1_000)
    body = {"name": "echo", "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.x }}"}}]}
    definition = {
        "name": "fan",
        "nodes": [{"id": "each", "type": "map", "config": {"items": "{{ ['x' * 600, 'y' * 600] | join }}",
                                                           "body": body, "inputs": {"x": "{{ item }}"}}}],
    }  # fmt: skip
    async with (
        control_handler(deployment.worker(), pg_pool, redis) as control,
        Engine(deployment, redis, handlers=[control]) as engine,
    ):
        run_id = await engine.submit(definition)
        assert await engine.wait_ended(run_id) == "failed"
        error = (await engine.node_states(run_id))["each"]["error"]
        assert "budget" in error["message"] and "1000" in error["message"].replace(",", ""), error
