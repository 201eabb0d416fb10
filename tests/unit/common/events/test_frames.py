"""Frames relay events as stored: the client gets the stored event, ``v`` included, plus its stream id."""

from __future__ import annotations

import json

import pytest

from common.events.frames import from_entry, valid_id
from common.runs.messages import Event


def test_a_frame_is_the_stored_event_with_its_id() -> None:
    stored = Event(type="node_queued", run_id="r1", node_id="a", ts=7, data={"attempt": 1}).stored()
    frame = from_entry("7-0", {"e": stored})
    assert (frame.id, frame.type, frame.ts, frame.terminal) == ("7-0", "node_queued", 7, False)
    assert json.loads(frame.text) == {"id": "7-0", **json.loads(stored)}
    assert json.loads(frame.text)["v"] == Event.schema_version()


def test_an_event_stored_before_versions_is_relayed_as_it_is() -> None:
    frame = from_entry("8-0", {"e": '{"type": "run_succeeded", "run_id": "r1", "ts": 8, "data": {}}'})
    assert frame.terminal and "v" not in json.loads(frame.text)


@pytest.mark.parametrize("cursor", ["0-0", "5", "1700000000000-3", f"{2**64 - 1}-{2**64 - 1}"])
def test_a_stream_id_redis_accepts_is_a_valid_cursor(cursor: str) -> None:
    assert valid_id(cursor)


@pytest.mark.parametrize(
    "cursor", ["", "-1", "1-", " 5", "1_0", "\u0661", f"{2**64}-0", "0-99999999999999999999999", "a-b"]
)
def test_a_cursor_redis_would_refuse_is_invalid(cursor: str) -> None:
    assert not valid_id(cursor)
