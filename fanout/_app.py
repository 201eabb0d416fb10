"""The fanout ASGI app and its server: WebSocket streams plus health, readiness and metrics."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from common.clients import open_clients
from common.events.metrics import StreamMetrics
from common.events.streams import EventStreams
from common.key_watch import KeyWatch
from common.keys import Keys
from common.metrics import Metrics
from common.ops_endpoint import ops_routes
from common.serving import serve_until_cancelled
from common.settings import FanoutSettings
from fanout._protocol import FramesProtocol
from fanout._ws import SocketHandler


def create_fanout_app(
    settings: FanoutSettings, *, redis: aioredis.Redis | None = None, pool: asyncpg.Pool | None = None
) -> Starlette:
    """The fanout app; clients not given are created by its lifespan from ``settings`` and closed after."""
    metrics = Metrics()
    stream_metrics = StreamMetrics(metrics, "ws")
    handler: SocketHandler | None = None

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal handler
        async with AsyncExitStack() as stack:
            # API keys live in Postgres, so the fanout needs it to authenticate anyone.
            redis_client, db = await open_clients(stack, settings, "fanout", redis=redis, pool=pool)
            keys = Keys(settings.key_prefix, settings.shards)
            streams = EventStreams(
                redis_client,
                keys,
                db,
                queue_size=settings.queue_size,
                block_ms=settings.reader_block_ms,
                batch=settings.reader_batch,
                page_size=settings.backlog_page,
            )
            await stack.enter_async_context(streams)
            key_watch = KeyWatch(redis_client, db, keys, settings.key_recheck_s, metrics=metrics)
            await stack.enter_async_context(key_watch)
            handler = SocketHandler(settings, streams, db, stream_metrics, key_watch)
            app.state.redis, app.state.pool = redis_client, db
            yield

    def current() -> SocketHandler:
        if handler is None:
            raise RuntimeError("fanout app used outside its lifespan")
        return handler

    async def ws_run(websocket: WebSocket, send: Send) -> None:
        await current().run_endpoint(websocket, send)

    async def ws_tenant(websocket: WebSocket, send: Send) -> None:
        await current().tenant_endpoint(websocket, send)

    routes = [
        WebSocketRoute("/ws/runs/{run_id}", _SocketEndpoint(ws_run)),
        WebSocketRoute("/ws/tenant", _SocketEndpoint(ws_tenant)),
        *ops_routes(lambda request: (request.app.state.redis, request.app.state.pool), metrics),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


class _SocketEndpoint:
    """A WebSocket route as a plain ASGI app, so the handler gets the server's ``send`` beside the WebSocket."""

    def __init__(self, serve: Callable[[WebSocket, Send], Awaitable[None]]) -> None:
        self.serve = serve

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(WebSocket(scope, receive=receive, send=send), send)


def uvicorn_config(app: Starlette, settings: FanoutSettings) -> uvicorn.Config:
    """The uvicorn configuration serving ``app``: protocol-level pings reap dead connections.

    No ``permessage-deflate``: compressing is per client and per frame, which is what encoding each event once
    for every client avoids (``fanout._protocol``); event frames are small JSON.
    """
    return uvicorn.Config(
        app,
        host=settings.fanout_host,
        port=settings.fanout_port,
        ws=FramesProtocol,
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ping_interval_s,
        ws_ping_timeout=settings.ping_timeout_s,
        log_config=None,
        access_log=False,
        lifespan="on",
    )


async def run_fanout(settings: FanoutSettings) -> None:
    """Serve the fanout on ``fanout_host:fanout_port`` until cancelled; shuts down gracefully."""
    config = uvicorn_config(create_fanout_app(settings), settings)
    # What the process imported lives as long as it does: keep it out of the collector's full scans, which stall
    # every client at once (1,000 connections and a reconnect storm trigger them) for a time that grows with the
    # objects scanned: ~100,000 of ~290,000 with 1,000 clients connected.
    gc.freeze()
    await serve_until_cancelled(config, "fanout")
