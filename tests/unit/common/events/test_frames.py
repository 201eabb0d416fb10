"""Frames relay events as stored: the client gets the stored event, ``v`` included, plus its stream id."""

from __future__ import annotations

import json

from common.events.frames import from_entry
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
