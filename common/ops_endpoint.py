"""The health and metrics endpoint of a coordinator or worker: ``/healthz``, ``/readyz`` and ``/metrics`` on
``AOB_OPS_HOST:AOB_OPS_PORT``, for Kubernetes probes and Prometheus scrapes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import asyncpg
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.metrics import Metrics
from common.ops_settings import OpsEndpointFields
from common.serving import all_ready, readiness

logger = logging.getLogger(__name__)


def ops_routes(clients: Callable[[Request], tuple[aioredis.Redis, asyncpg.Pool]], metrics: Metrics) -> list[Route]:
    """``/healthz`` (the event loop answers), ``/readyz`` (Redis and Postgres answer; 503 naming the one down) and
    ``/metrics`` (the process's Prometheus exposition); ``clients`` gives the Redis and Postgres a request checks."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        states = await readiness(*clients(request))
        if not all_ready(states):
            return JSONResponse({"status": "unavailable", **states}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        payload, content_type = metrics.render()
        return Response(payload, media_type=content_type)

    return [Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics_endpoint)]


def create_ops_app(redis: aioredis.Redis, pool: asyncpg.Pool, metrics: Metrics) -> Starlette:
    """The ops routes of a coordinator or worker, alone in their own app."""
    return Starlette(routes=ops_routes(lambda request: (redis, pool), metrics))


class _SignalFreeServer(uvicorn.Server):
    """A uvicorn server that leaves SIGTERM and SIGINT to the process's own handlers (``common.lifecycle``), which
    drain the service in order; uvicorn's would take them over and stop only the endpoint."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def ops_endpoint(
    settings: OpsEndpointFields, redis: aioredis.Redis, pool: asyncpg.Pool, metrics: Metrics, service: str
) -> AsyncIterator[None]:
    """Serve the endpoint while the block runs (nothing when ``ops_port`` is 0), so probes answer through a graceful
    shutdown too; raises ``OSError`` at once when the address cannot be bound."""
    if not settings.ops_port:
        yield
        return
    family = socket.AF_INET6 if ":" in settings.ops_host else socket.AF_INET
    # Bound here rather than by uvicorn: a taken port fails the start, and the port listens once this returns.
    sock = socket.create_server((settings.ops_host, settings.ops_port), family=family)
    config = uvicorn.Config(
        create_ops_app(redis, pool, metrics), log_config=None, access_log=False, lifespan="off", timeout_keep_alive=5
    )
    server = _SignalFreeServer(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="ops-endpoint")
    logger.info("%s: health and metrics on %s:%d", service, settings.ops_host, settings.ops_port)
    try:
        yield
    finally:
        server.should_exit = True
        await serving
        sock.close()
