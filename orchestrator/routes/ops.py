"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Response

from orchestrator._errors import ApiError
from orchestrator._state import State

router = APIRouter(tags=["ops"])
_READY_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> dict[str, str]:
    """Redis and Postgres answer; 503 naming the one that does not."""
    checks = {"redis": state.redis.ping(), "postgres": state.pool.fetchval("SELECT 1")}
    failed = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, _READY_TIMEOUT_S)
        except Exception as exc:  # any failure means not ready; the reason goes back to the prober
            failed[name] = f"{type(exc).__name__}: {exc}"
    if failed:
        raise ApiError(503, "not ready: " + ", ".join(failed), details=failed)
    return {"status": "ready"}


@router.get("/metrics")
async def metrics(state: State) -> Response:
    """Prometheus exposition of this process's metrics."""
    payload, content_type = state.metrics.render()
    return Response(payload, media_type=content_type)
