"""uvicorn's WebSocket protocol plus one ASGI extension: writing WebSocket frames encoded once for many clients.

An event goes to every client watching its run as the same bytes: the frame is built once per event
(``WireEvent.ws_frame``), and a client that has several events pending gets them in one transport write. Plain
ASGI cannot express either (each ``websocket.send`` is one message, framed by the server for each client), so the
server declares the extension ``aob.websocket.frames`` in the scope of each connection where pre-built frames are
valid, and then accepts ``{"type": "aob.websocket.frames", "bytes": <complete frames>}``. Frames are only valid
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
            self.scope["extensions"][FRAMES_EXTENSION] = {}

    async def send(self, message: Any) -> None:
        if message["type"] != FRAMES_EXTENSION:
            await super().send(message)
            return
        # The same backpressure as a plain send: wait while the transport's buffer is above its high-water mark.
        await self.writable.wait()
        if self.disconnected or self.close_sent or self.transport.is_closing():
            raise ClientDisconnected()
        if not self.handshake_complete:
            raise RuntimeError(f"{FRAMES_EXTENSION} before the WebSocket handshake completed")
        self.transport.write(message["bytes"])
