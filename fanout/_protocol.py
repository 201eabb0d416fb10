"""uvicorn's WebSocket protocol plus one ASGI extension: writing WebSocket frames encoded once for many clients.

An event goes to every client watching its run as the same bytes: the frame is built once per event
(``WireEvent.ws_frame``), and a client that has several events pending gets them in one transport write. Plain
ASGI cannot express either (each ``websocket.send`` is one message, framed by the server for each client), so the
server declares the extension ``aob.websocket.frames`` in the scope of each connection where pre-built frames are
valid, and then accepts ``{"type": "aob.websocket.frames", "bytes": <complete frames>}``. The extension also holds
``write_now(frames) -> bool``, a synchronous write for a connection that can take bytes without waiting, so the
stream reader can hand a new event to an idle client without waking the client's task. Frames are only valid
without a negotiated extension (no ``permessage-deflate``: the fanout does not offer compression, whose per-client
cost is what this avoids). The wire is unchanged: clients receive the same text messages, one event each.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

FRAMES_EXTENSION = "aob.websocket.frames"


class FramesProtocol(WebSocketsSansIOProtocol):
    """``websockets-sansio`` with ``aob.websocket.frames``: pre-built frames written as they are."""

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        # The scope exists once the handshake was accepted; the app task that reads it has not started yet.
        if getattr(self, "scope", None) is not None and not self.conn.extensions:
            self.scope["extensions"][FRAMES_EXTENSION] = {"write_now": self.write_now}

    async def send(self, message: Any) -> None:
        if message["type"] != FRAMES_EXTENSION:
            await super().send(message)
            return
        # The same backpressure as a plain send: wait while the transport's buffer is above its high-water mark.
        await self.writable.wait()
        if not self._open():
            raise ClientDisconnected()
        self.transport.write(message["bytes"])

    def write_now(self, frames: bytes) -> bool:
        """Write ``frames`` if the connection is open and its buffer below the high-water mark; whether it did."""
        if not self.writable.is_set() or not self._open():
            return False
        self.transport.write(frames)
        return True

    def _open(self) -> bool:
        # Accepted, not closing: the only state in which data frames may go out.
        return (
            self.handshake_complete
            and not self.disconnected
            and not self.close_sent
            and not self.transport.is_closing()
        )
