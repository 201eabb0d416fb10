"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse

from common.queue_depth import export_queue_depth
from common.serving import all_ready, readiness
from orchestrator._errors import ApiError
from orchestrator._schemas.service import HealthAnswer, ReadyAnswer
from orchestrator._state import State

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> HealthAnswer:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: State) -> ReadyAnswer:
    """Redis and Postgres answer; 503 naming the one that does not (details: ``{"redis": "down", ...}``)."""
    states = await readiness(state.redis, state.pool)
    if not all_ready(states):
        down = ", ".join(name for name, up in states.items() if up != "ok")
        raise ApiError(503, f"not ready: {down} down", details=states)
    return {"status": "ready"}


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> Response:
    """Prometheus exposition of this process's metrics, with the worker queues' depth read at the scrape."""
    await export_queue_depth(state.redis, state.keys, state.metrics)
    payload, content_type = state.metrics.render()
    return Response(payload, media_type=content_type)
