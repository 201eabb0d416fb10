"""A run's events over SSE (live, resumable) or as JSON pages of its full history (Redis or the archive)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import StreamingResponse

from common.events.feed import EventFeed
from common.events.frames import START_ID, valid_id
from common.events.hub import Overflowed
from common.events.metrics import StreamMetrics
from common.events.streams import EventStreams
from orchestrator._errors import ApiError
from orchestrator._run_view import find_run
from orchestrator._schemas.streams import EVENT_RESPONSES
from orchestrator._state import AppState, Reader, State

logger = logging.getLogger(__name__)

HEARTBEAT_S = 15.0
RETRY_MS = 1000
MAX_JSON_LIMIT = 10_000


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan, so the clients on ``app.state.aob`` exist already.
    state: AppState = app.state.aob
    async with EventStreams(state.redis, state.keys, state.pool) as streams:
        app.state.aob_events = (streams, StreamMetrics(state.metrics, "sse"), state.key_watch)
        yield


router = APIRouter(prefix="/api/v1", tags=["events"], lifespan=_lifespan)


@router.get("/runs/{run_id}/events", response_model=None, responses=EVENT_RESPONSES)
async def run_events(
    run_id: str,
    request: Request,
    state: State,
    caller: Reader,
    after: str | None = Query(default=None, max_length=50, description="resume after this event id"),
    format: Literal["sse", "json"] = Query(default="sse", description="sse: live stream; json: stored history"),
    limit: int = Query(default=1000, ge=1, le=MAX_JSON_LIMIT, description="events per JSON page"),
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=50)] = None,
) -> StreamingResponse | dict[str, Any]:
    """SSE: events after the cursor, then live ones, closing after the terminal event (or after a
    ``{"type": "revoked"}`` message once the caller's key is revoked). JSON: one page of history."""
    await find_run(state, caller.tenant_id, run_id)
    cursor = last_event_id or after or START_ID
    if not valid_id(cursor):
        source = "Last-Event-ID" if last_event_id else "after"
        raise ApiError(400, f"{source}: expected an event id like 1700000000000-0, got {cursor!r}")
    streams, metrics, key_watch = request.app.state.aob_events
    if format == "json":
        return await _history_page(streams, run_id, cursor, limit)
    frames = _frames(streams.run_feed(run_id, cursor), metrics, key_watch.watch(caller))
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(frames, media_type="text/event-stream", headers=headers)


async def _history_page(streams: EventStreams, run_id: str, cursor: str, limit: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    async for page in streams.history.pages(streams.keys.events(run_id), cursor, run_id):
        items.extend(json.loads(event.text) for event in page)
        if len(items) > limit:
            break
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": items[-1]["id"] if more else None}


async def _frames(
    feed: EventFeed, metrics: StreamMetrics, watching: contextlib.AbstractContextManager[asyncio.Event]
) -> AsyncIterator[str]:
    # One `id:` and one JSON `data:` line per event: json.dumps never emits a raw newline, so no frame injection.
    metrics.clients.inc()
    try:
        with watching as revoked:
            frames = _feed_frames(feed, metrics, revoked)
            async with contextlib.aclosing(frames):
                async for frame in frames:
                    yield frame
    finally:
        metrics.clients.dec()


async def _feed_frames(feed: EventFeed, metrics: StreamMetrics, revoked: asyncio.Event) -> AsyncGenerator[str, None]:
    last_sent = feed.after
    revocation = asyncio.ensure_future(revoked.wait())
    try:
        async with feed:
            deliveries = feed.deliveries()
            async with contextlib.aclosing(deliveries):
                yield f"retry: {RETRY_MS}\n\n"
                pending: asyncio.Future[Any] = asyncio.ensure_future(anext(deliveries))
                try:
                    while True:
                        done, _ = await asyncio.wait(
                            {pending, revocation}, timeout=HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED
                        )
                        if revocation in done:
                            yield f"data: {json.dumps({'type': 'revoked'})}\n\n"
                            return
                        if not done:
                            yield ": keep-alive\n\n"
                            continue
                        try:
                            delivery = pending.result()
                        except StopAsyncIteration:
                            return
                        yield f"id: {delivery.event.id}\ndata: {delivery.event.text}\n\n"
                        last_sent = delivery.event.id
                        metrics.delivered(delivery.event, delivery.live)
                        pending = asyncio.ensure_future(anext(deliveries))
                except Overflowed:
                    metrics.resyncs.inc()
                    logger.info("SSE client fell behind; resync after %s", last_sent)
                    yield f"data: {json.dumps({'type': 'resync', 'after': last_sent})}\n\n"
                finally:
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration, Overflowed):
                        await pending
    finally:
        revocation.cancel()
