"""What the two HTTP services (orchestrator, fanout) serve alike: readiness of their clients, and uvicorn until
cancelled."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import redis.asyncio as aioredis
import uvicorn

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 2.0


async def readiness(redis: aioredis.Redis, pool: asyncpg.Pool, timeout_s: float = READY_TIMEOUT_S) -> dict[str, str]:
    """``"ok"`` or ``"down"`` for Redis and Postgres, by name: down unless it answered within ``timeout_s``.

    Why a dependency is down is logged here and never returned: exception text names hosts, and sometimes more.
    """
    checks = {"redis": redis.ping(), "postgres": pool.fetchval("SELECT 1")}
    states = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(timeout_s):
                await check
        except Exception:  # any failure means not ready
            logger.warning("readiness: %s is down", name, exc_info=True)
            states[name] = "down"
        else:
            states[name] = "ok"
    return states


def all_ready(states: dict[str, str]) -> bool:
    """Whether every dependency in ``readiness``'s answer is ok."""
    return all(state == "ok" for state in states.values())


async def serve_until_cancelled(config: uvicorn.Config, service: str) -> None:
    """Serve ``config`` until cancelled; a cancel shuts the server down gracefully, then propagates."""
    server = uvicorn.Server(config)
    # uvicorn captures SIGINT/SIGTERM itself while serving and shuts down gracefully; cancellation does the same.
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        logger.info("%s stopping", service)
        server.should_exit = True
        await serving
        raise
