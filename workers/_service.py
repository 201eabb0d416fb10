"""``aob worker <type>``: a worker process serving one node type (or the built-in steps)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis

from common.clients import open_clients
from common.errors import ConfigError
from common.gc_tuning import settle_heap
from common.keys import Keys
from common.lifecycle import serve_until_signalled
from common.logging import configure_logging
from common.metrics import Metrics
from common.ops_endpoint import ops_endpoint
from common.runs.cas import Cas
from common.secrets import Keyring, SecretStore
from common.settings import WorkerSettings
from common.tracing import Tracing, start_tracing
from common.workflow.ir import WORKER_TYPES
from workers._handler import NodeHandler
from workers._runtime import Worker
from workers.builtin import BuiltinHandler


@contextlib.asynccontextmanager
async def _handler_for(
    node_type: str,
    settings: WorkerSettings,
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    metrics: Metrics,
    tracing: Tracing | None,
) -> AsyncIterator[NodeHandler]:
    if node_type == "builtin":
        yield BuiltinHandler()
    elif node_type == "http":
        from workers.http import http_handler

        secrets = SecretStore(pool, Keyring.from_settings(settings))
        async with http_handler(settings, secrets=secrets) as handler:
            yield handler
    elif node_type == "hitl":
        from workers.hitl import hitl_handler

        async with hitl_handler(settings, pool, redis, metrics=metrics) as handler:
            yield handler
    elif node_type == "control":
        from workers.control import control_handler

        async with control_handler(settings, pool, redis, metrics=metrics, tracing=tracing) as handler:
            yield handler
    elif node_type == "agent":
        from workers.agent import agent_handler

        async with agent_handler(settings, pool, redis, tracing=tracing) as handler:
            yield handler
    else:
        raise ConfigError(f"worker type: expected one of {', '.join(WORKER_TYPES)}, got {node_type!r}")


async def run_worker(node_type: str, settings: WorkerSettings) -> None:
    """Serve ``node_type`` tokens until SIGTERM."""
    configure_logging(settings.log_level, settings.log_json)
    async with contextlib.AsyncExitStack() as stack:
        redis, pool = await open_clients(stack, settings, f"{node_type} worker")
        metrics = Metrics()
        tracing = start_tracing(f"aob-worker-{node_type}", settings)
        if tracing is not None:
            stack.callback(tracing.shutdown)
        async with _handler_for(node_type, settings, pool, redis, metrics, tracing) as handler:
            cas = Cas(redis, Keys(settings.key_prefix, settings.shards), pool)
            worker = Worker(settings, redis, [handler], cas=cas, metrics=metrics, tracing=tracing)
            settle_heap()
            async with ops_endpoint(settings, redis, pool, metrics, f"{node_type} worker"):
                await serve_until_signalled(worker)
