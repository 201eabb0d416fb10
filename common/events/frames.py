"""Events as clients see them: one stream entry becomes one JSON frame, serialised once and shared."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from websockets.frames import Frame, Opcode

TERMINAL_EVENT_TYPES = frozenset({"run_succeeded", "run_failed", "run_cancelled", "run_timed_out"})
START_ID = "0-0"


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One event: its stream id (the resume cursor), type, append time and the JSON frame sent to clients.

    ``ws_frame`` is ``text`` as one complete WebSocket message, encoded once and written as is to every WebSocket
    client that watches the stream.
    """

    id: str
    type: str
    ts: int
    text: str
    ws_frame: bytes

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_TYPES


def wire_event(entry_id: str, event: dict[str, Any]) -> WireEvent:
    """The frame ``{"id", "v", "type", "run_id", "node_id"?, "ts", "data"}`` of one decoded event (passed as stored)."""
    frame = {"id": entry_id, **{k: v for k, v in event.items() if k != "id"}}
    text = json.dumps(frame, default=str)
    return WireEvent(entry_id, str(event.get("type", "")), int(event.get("ts", 0)), text, websocket_text_frame(text))


def websocket_text_frame(text: str) -> bytes:
    """``text`` as one final, unmasked, uncompressed WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=False)


def from_entry(entry_id: str, fields: dict[str, str]) -> WireEvent:
    """The event stored in stream entry ``entry_id`` (field ``e`` holds its JSON)."""
    return wire_event(entry_id, json.loads(fields["e"]))


def id_key(event_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair; ``5`` is read as ``5-0``. Raises ValueError for anything else."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


_MAX_ID_PART = 2**64 - 1
_STREAM_ID = re.compile(r"[0-9]{1,20}(?:-[0-9]{1,20})?")


def valid_id(event_id: str) -> bool:
    """Whether ``event_id`` is a stream id a client may resume from."""
    # ASCII digits only: int() also reads " 5", "1_0" and other scripts' digits, which Redis refuses.
    if not _STREAM_ID.fullmatch(event_id):
        return False
    ms, seq = id_key(event_id)
    # Redis refuses either part past 64 bits unsigned.
    return 0 <= ms <= _MAX_ID_PART and 0 <= seq <= _MAX_ID_PART
