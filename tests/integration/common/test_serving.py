"""Readiness names the client that does not answer; a served app stops gracefully when its task is cancelled."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from common.redis_client import connect_redis
from common.serving import readiness, serve_until_cancelled
from tests.support.eventually import eventually
from tests.support.streaming import free_port


async def test_ready_when_both_answer(redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    assert await readiness(redis, pg_pool) == {"redis": "ok", "postgres": "ok"}


async def test_names_the_client_that_does_not_answer_and_logs_why(
    pg_pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        states = await readiness(dead, pg_pool, timeout_s=1.0)
    finally:
        await dead.aclose()
    assert states == {"redis": "down", "postgres": "ok"}
    assert "redis is down" in caplog.text and "Error" in caplog.text


async def test_cancel_finishes_the_request_in_flight_then_propagates() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(request: Request) -> PlainTextResponse:
        started.set()
        await release.wait()
        return PlainTextResponse("done")

    port = free_port()
    app = Starlette(routes=[Route("/slow", slow)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    serving = asyncio.create_task(serve_until_cancelled(config, "test"))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        await eventually(_listening(port), 10)
        request = asyncio.create_task(client.get("/slow"))
        await started.wait()
        serving.cancel()
        release.set()
        assert (await request).text == "done"
    with pytest.raises(asyncio.CancelledError):
        await serving


def _listening(port: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return True
        return False

    return check
