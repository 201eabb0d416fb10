"""Events as clients see them: one stream entry becomes one JSON frame, serialised once and shared."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TERMINAL_EVENT_TYPES = frozenset({"run_succeeded", "run_failed", "run_cancelled", "run_timed_out"})
START_ID = "0-0"


@dataclass(frozen=True, slots=True)
class WireEvent:
    """One event: its stream id (the resume cursor), type, append time and the JSON frame sent to clients."""

    id: str
    type: str
    ts: int
    text: str

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENT_TYPES


def wire_event(entry_id: str, event: dict[str, Any]) -> WireEvent:
    """The frame ``{"id", "v", "type", "run_id", "node_id"?, "ts", "data"}`` of one decoded event (passed as stored)."""
    frame = {"id": entry_id, **{k: v for k, v in event.items() if k != "id"}}
    return WireEvent(entry_id, str(event.get("type", "")), int(event.get("ts", 0)), json.dumps(frame, default=str))


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
