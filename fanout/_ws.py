"""The WebSocket endpoints: authenticate, check the tenant, then pump a feed to the client.

The key comes in the first message, ``{"token": "<api key>"}`` (or, from clients that can set headers, as
``Authorization: Bearer``); never in the URL, where proxies and browser histories keep it.

Close codes: 1000 after a run's terminal event; 1008 the key was revoked while the socket was open; 4400 bad
``after`` cursor; 4401 missing, unknown or revoked API key, or a key in the URL; 4404 a run that does not exist or
belongs to another tenant (also: not started within ``pending_run_timeout_s``); 4408 the client fell behind, after a
``{"type": "resync", "after": <last id sent>}`` message: reconnect with that ``after``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, Callable, Sequence

import asyncpg
from starlette.types import Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected, WebSocketState

from common.auth import Principal, authenticate
from common.events.feed import Chunk, EventFeed
from common.events.frames import START_ID, WireEvent, valid_id
from common.events.hub import Overflowed
from common.events.merged import MergedFeed
from common.events.metrics import StreamMetrics
from common.events.streams import EventStreams
from common.key_watch import KeyWatch
from common.settings import FanoutSettings
from fanout._protocol import FRAMES_EXTENSION

logger = logging.getLogger(__name__)

CLOSE_DONE = 1000
CLOSE_POLICY = 1008
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_RESYNC = 4408


class _Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class _Writer:
    """Writes events to one client and remembers the last one written (a resync names it).

    Where the server offers ``aob.websocket.frames``, a chunk's frames, encoded once for every client, go out in
    one write, and ``write_now`` can write while the client's task sleeps; elsewhere each event is one
    ``websocket.send``.
    """

    def __init__(self, websocket: WebSocket, send: Send, after: str, metrics: StreamMetrics) -> None:
        self.websocket = websocket
        frames = (websocket.scope.get("extensions") or {}).get(FRAMES_EXTENSION)
        self.send = send if frames is not None else None
        self.write_frames_now: Callable[[bytes], bool] | None = frames.get("write_now") if frames else None
        self.last_sent = after
        self.metrics = metrics

    async def write(self, events: Sequence[WireEvent], live: bool) -> None:
        """Write ``events``, waiting while the connection's buffer is full."""
        if self.send is None:
            for event in events:
                await self.websocket.send_text(event.text)
                self.last_sent = event.id
        else:
            try:
                await self.send({"type": FRAMES_EXTENSION, "bytes": _frames(events)})
            except OSError:  # the server's ClientDisconnected, as Starlette's WebSocket.send reads it
                raise WebSocketDisconnect(code=1006) from None
            self.last_sent = events[-1].id
        self.metrics.delivered_all(events, live)

    def write_now(self, events: Sequence[WireEvent]) -> bool:
        """Write live ``events`` if the connection takes them without waiting; whether it did."""
        if self.write_frames_now is None or not self.write_frames_now(_frames(events)):
            return False
        self.last_sent = events[-1].id
        self.metrics.delivered_all(events, True)
        return True


def _frames(events: Sequence[WireEvent]) -> bytes:
    return events[0].ws_frame if len(events) == 1 else b"".join(event.ws_frame for event in events)


class SocketHandler:
    """Serves ``/ws/runs/{run_id}`` and ``/ws/tenant`` for one process."""

    def __init__(
        self,
        settings: FanoutSettings,
        streams: EventStreams,
        pool: asyncpg.Pool,
        metrics: StreamMetrics,
        key_watch: KeyWatch,
    ) -> None:
        self.settings = settings
        self.streams = streams
        self.pool = pool
        self.metrics = metrics
        self.key_watch = key_watch

    async def run_endpoint(self, websocket: WebSocket, send: Send) -> None:
        """``/ws/runs/{run_id}?after=<id>``: the run's events after ``after``, then a normal close at its end.

        ``send`` is the server's own ASGI send, for the frames extension (``fanout._protocol``).
        """
        await self._serve(websocket, send, websocket.path_params["run_id"])

    async def tenant_endpoint(self, websocket: WebSocket, send: Send) -> None:
        """``/ws/tenant?after=<id>``: run-level events of the caller's tenant, until the client leaves."""
        await self._serve(websocket, send, None)

    async def _serve(self, websocket: WebSocket, send: Send, run_id: str | None) -> None:
        await websocket.accept()
        try:
            principal, after = await self._admit(websocket)
            tenant_known = True
            if run_id is not None:
                tenant = await self.streams.history.run_tenant(run_id)
                if tenant is not None and tenant != principal.tenant_id:
                    raise _Refused(CLOSE_NOT_FOUND, f"run {run_id}: not found")
                tenant_known = tenant is not None
        except _Refused as refused:
            await _close(websocket, refused.code, refused.reason)
            return
        except WebSocketDisconnect:
            return
        feed: EventFeed | MergedFeed
        if run_id is None:
            feed = self.streams.tenant_feed(principal.tenant_id, after)
        else:
            feed = self.streams.run_feed(run_id, after)
        self.metrics.clients.inc()
        try:
            with self.key_watch.watch(principal) as revoked:
                async with feed:
                    writer = _Writer(websocket, send, feed.after, self.metrics)
                    await self._pump(writer, feed, principal, None if tenant_known else run_id, revoked)
        finally:
            self.metrics.clients.dec()

    async def _admit(self, websocket: WebSocket) -> tuple[Principal, str]:
        after = websocket.query_params.get("after") or START_ID
        if not valid_id(after):
            raise _Refused(CLOSE_BAD_REQUEST, f"after: expected a stream id like 1700000000000-0, got {after!r}")
        raw_key = await self._raw_key(websocket)
        principal = await authenticate(self.pool, raw_key, self.settings.admin_key) if raw_key else None
        if principal is None:
            raise _Refused(CLOSE_UNAUTHORIZED, "unknown or revoked API key" if raw_key else "no API key")
        return principal, after

    async def _raw_key(self, websocket: WebSocket) -> str:
        # Refused even beside a header: the key is in logs already, and its owner should learn to stop.
        if "token" in websocket.query_params:
            raise _Refused(CLOSE_UNAUTHORIZED, 'API key in the URL refused: send {"token": "<api key>"} first')
        scheme, _, key = websocket.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return key.strip()
        # Browsers cannot set headers on a WebSocket: they send {"token": ...} first.
        try:
            async with asyncio.timeout(self.settings.auth_timeout_s):
                message = await websocket.receive_text()
        except TimeoutError:
            raise _Refused(CLOSE_UNAUTHORIZED, "expected an API key within the auth timeout") from None
        try:
            token = json.loads(message).get("token")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise _Refused(CLOSE_UNAUTHORIZED, 'expected a first message {"token": "<api key>"}')
        return token

    async def _pump(
        self,
        writer: _Writer,
        feed: EventFeed | MergedFeed,
        principal: Principal,
        pending_run: str | None,
        revoked: asyncio.Event,
    ) -> None:
        websocket = writer.websocket
        sender = asyncio.create_task(self._send_all(writer, feed, principal, pending_run))
        receiver = asyncio.create_task(_until_disconnect(websocket))
        overflow = asyncio.create_task(feed.overflowed.wait())
        revocation = asyncio.create_task(revoked.wait())
        tasks = {sender, receiver, overflow, revocation}
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if receiver in done:
            return
        if revocation in done:
            await _close(websocket, CLOSE_POLICY, "API key revoked")
            return
        error = sender.exception() if sender in done and not sender.cancelled() else None
        if overflow in done or isinstance(error, Overflowed):
            await self._resync(websocket, writer.last_sent)
        elif isinstance(error, _Refused):
            await _close(websocket, error.code, error.reason)
        elif isinstance(error, WebSocketDisconnect | WebSocketDisconnected):
            return
        elif error is not None:
            raise error
        else:
            await _close(websocket, CLOSE_DONE, "run ended")

    async def _send_all(
        self, writer: _Writer, feed: EventFeed | MergedFeed, principal: Principal, pending_run: str | None
    ) -> None:
        chunks = feed.chunks(self.settings.write_batch_bytes)
        async with contextlib.aclosing(chunks):
            if pending_run is not None:
                first = await self._first_of_pending_run(chunks, pending_run, principal)
                if first is None:
                    return
                await writer.write(first.events, first.live)
            # Only now: the first chunk of a pending run is checked above before anything is written.
            if writer.write_frames_now is not None:
                feed.write_directly(writer.write_now)
            async for chunk in chunks:
                await writer.write(chunk.events, chunk.live)

    async def _first_of_pending_run(
        self, chunks: AsyncGenerator[Chunk, None], run_id: str, principal: Principal
    ) -> Chunk | None:
        # The run had not started at connect time, so its tenant is checked once its first event exists.
        try:
            async with asyncio.timeout(self.settings.pending_run_timeout_s):
                first = await anext(chunks)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise _Refused(CLOSE_NOT_FOUND, f"run {run_id}: not found") from None
        if await self.streams.history.run_tenant(run_id) != principal.tenant_id:
            raise _Refused(CLOSE_NOT_FOUND, f"run {run_id}: not found")
        return first

    async def _resync(self, websocket: WebSocket, last_sent: str) -> None:
        self.metrics.resyncs.inc()
        logger.info("client fell behind on %s; resync after %s", websocket.url.path, last_sent)
        # A stalled client may never read again: bound the wait to hand it the resync message.
        with contextlib.suppress(TimeoutError, WebSocketDisconnect, WebSocketDisconnected):
            async with asyncio.timeout(self.settings.resync_send_timeout_s):
                await websocket.send_text(json.dumps({"type": "resync", "after": last_sent}))
                await websocket.close(CLOSE_RESYNC, f"fell behind; reconnect with after={last_sent}")


async def _until_disconnect(websocket: WebSocket) -> None:
    # Clients have nothing more to say; reading is how a closed or dead (ping-reaped) connection is noticed.
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is WebSocketState.CONNECTED and websocket.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected, RuntimeError):
            await websocket.close(code, reason)
