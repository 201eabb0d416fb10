"""``aob worker <type>``: a worker process serving one node type (or the built-in steps)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis

from common.clients import open_clients
from common.errors import ConfigError
from common.keys import Keys
from common.lifecycle import serve_until_signalled
from common.logging import configure_logging
from common.metrics import Metrics
from common.runs.cas import Cas
from common.settings import EngineSettings
from workers._handler import NodeHandler
from workers._runtime import Worker
from workers.builtin import BuiltinHandler

WORKER_TYPES = ("builtin", "http", "hitl", "control", "agent")


@contextlib.asynccontextmanager
async def _handler_for(
    node_type: str, settings: EngineSettings, pool: asyncpg.Pool, redis: aioredis.Redis, metrics: Metrics
) -> AsyncIterator[NodeHandler]:
    if node_type == "builtin":
        yield BuiltinHandler()
    elif node_type == "http":
        from workers.http import HttpWorkerSettings, http_handler

        async with http_handler(HttpWorkerSettings(**settings.model_dump())) as handler:
            yield handler
    elif node_type == "hitl":
        from workers.hitl import HitlWorkerSettings, hitl_handler

        async with hitl_handler(HitlWorkerSettings(**settings.model_dump()), pool, redis, metrics=metrics) as handler:
            yield handler
    elif node_type == "control":
        from workers.control import ControlWorkerSettings, control_handler

        control_settings = ControlWorkerSettings(**settings.model_dump())
        async with control_handler(control_settings, pool, redis, metrics=metrics) as handler:
            yield handler
    elif node_type == "agent":
        from workers.agent import AgentWorkerSettings, agent_handler

        async with agent_handler(AgentWorkerSettings(**settings.model_dump()), pool, redis) as handler:
            yield handler
    else:
        raise ConfigError(f"worker type: expected one of {', '.join(WORKER_TYPES)}, got {node_type!r}")


async def run_worker(node_type: str, settings: EngineSettings) -> None:
    """Serve ``node_type`` tokens until SIGTERM."""
    configure_logging(settings.log_level, settings.log_json)
    async with contextlib.AsyncExitStack() as stack:
        redis, pool = await open_clients(stack, settings, f"{node_type} worker")
        metrics = Metrics()
        async with _handler_for(node_type, settings, pool, redis, metrics) as handler:
            cas = Cas(redis, Keys(settings.key_prefix), pool)
            worker = Worker(settings, redis, [handler], cas=cas, metrics=metrics)
            await serve_until_signalled(worker)
