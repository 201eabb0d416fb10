"""Control nodes with tracing on: the child runs they start join their parent run's trace."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common.tracing._sdk import SdkTracing
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from workers.control import control_handler


async def test_with_tracing_on_child_runs_join_their_parent_runs_trace(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    control_deployment = deployment.replace(control_sweep_interval_s=0.2, control_block_ms=100)
    tracing = SdkTracing("aob-worker-control", "http://127.0.0.1:9/v1/traces", exporter=InMemorySpanExporter())
    settings = control_deployment.worker()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    body = {"name": "inner", "nodes": [{"id": "n", "type": "noop", "config": {}}]}
    outer = {"name": "outer", "nodes": [{"id": "o", "type": "loop", "config": {"body": body, "until": "true"}}]}
    async with (
        control_handler(settings, pg_pool, redis, tracing=tracing) as control,
        Engine(control_deployment, redis, handlers=[control], worker_tracing=tracing) as engine,
    ):
        run_id = await engine.submit(outer, traceparent=traceparent)
        assert await engine.wait_ended(run_id) == "succeeded"
        (child,) = await engine.redis.smembers(engine.keys.child_runs(run_id))
        assert (await engine.run_hash(child))["traceparent"] == traceparent
    tracing.shutdown()
