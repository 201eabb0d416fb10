"""``DeadLetter``: one shape for every writer, the flat shapes written before it, and a lenient read of whose it is."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from common.runs.dead_letters import DeadLetter
from common.runs.messages import UnsupportedVersion, unsupported_version

TOKEN = {"v": 1, "token_id": "2:fetch:3", "run_id": "r1", "node_id": "fetch", "type": "http", "attempt": 3}


def test_a_token_round_trips_through_its_stream_fields() -> None:
    letter = DeadLetter.of_token("wf.tasks.http", "5-0", {"t": json.dumps(TOKEN)}, "delivered 6 times", by="w-1")
    read = DeadLetter.read("9-1", letter.stored())
    assert read.id == "9-1" and read.model_copy(update={"id": None}) == letter
    assert (read.kind, read.run_id, read.node_id, read.token_id, read.epoch) == (
        "token",
        "r1",
        "fetch",
        "2:fetch:3",
        "2",
    )
    assert read.payload_value() == TOKEN and read.source_id == "5-0" and read.by == "w-1"


def test_an_unreadable_token_still_names_its_run_when_its_json_does() -> None:
    newer = json.dumps(TOKEN | {"v": 7, "shape": "new"})
    assert DeadLetter.of_token("s", "1-0", {"t": newer}, "refused", by=None).run_id == "r1"
    garbage = DeadLetter.of_token("s", "1-0", {"t": "{not json"}, "malformed token", by=None)
    assert (garbage.kind, garbage.run_id, garbage.epoch, garbage.payload_value()) == ("token", None, None, "{not json")


def test_an_entry_without_a_token_keeps_its_fields() -> None:
    letter = DeadLetter.of_token("wf.tasks.builtin", "1-0", {"x": "1", "y": "2"}, "malformed token", by="w")
    assert letter.kind == "entry" and letter.payload_value() == {"x": "1", "y": "2"}


@pytest.mark.parametrize("field", ["s", "signal"])
def test_the_coordinators_flat_shape_reads_as_a_signal(field: str) -> None:
    raw = json.dumps({"run_id": "r", "node_id": "n", "token_id": "0:n:1", "attempt": 1, "status": "succeeded"})
    letter = DeadLetter.read("1712000000123-4", {"stream": "completion_signals", "reason": "no such run", field: raw})
    assert (letter.kind, letter.source, letter.reason, letter.run_id, letter.payload) == (
        "signal",
        "completion_signals",
        "no such run",
        "r",
        raw,
    )
    assert letter.at_ms == 1712000000123 and letter.source_id is None and letter.by is None


def test_the_workers_flat_shape_reads_as_a_token() -> None:
    fields = {"stream": "wf.tasks.http", "entry_id": "3-0", "reason": "delivered 6 times", "t": json.dumps(TOKEN)}
    letter = DeadLetter.read("1712000000000-0", fields)
    assert (letter.kind, letter.source, letter.source_id, letter.token_id) == (
        "token",
        "wf.tasks.http",
        "3-0",
        "2:fetch:3",
    )
    assert letter.payload_value() == TOKEN


def test_a_newer_dead_letter_is_refused() -> None:
    letter = DeadLetter.of_signal("completion_signals", "{}", "r", by=None)
    stored = json.loads(letter.stored()["d"]) | {"v": 2}
    with pytest.raises(ValidationError) as caught:
        DeadLetter.read("1-0", {"d": json.dumps(stored)})
    assert isinstance(unsupported_version(caught.value), UnsupportedVersion)
