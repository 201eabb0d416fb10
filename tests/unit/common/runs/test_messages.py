"""The versioned wire models: round trips, the ``v`` policy, and the completion signal's constructors."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import ValidationError

from common.runs.decisions import Decision
from common.runs.ledger import RunEntry, StepEntry
from common.runs.messages import (
    ChildRunEnded,
    CompletionSignal,
    Event,
    NodeError,
    Token,
    WireModel,
    unsupported_version,
)
from workers.control._state import _EMIT

REPO = Path(__file__).resolve().parents[4]
TOKEN = Token(token_id="0:a:1", run_id="r1", node_id="a", type="builtin", attempt=1, ir_version=2)
SAMPLES: list[WireModel] = [
    TOKEN,
    CompletionSignal.succeeded(TOKEN, '{"x":1}', branch="yes", worker_id="w1", started_at_ms=1.5, ended_at_ms=2.5),
    Event(type="node_queued", run_id="r1", node_id="a", ts=7, data={"attempt": 1}),
    ChildRunEnded(run_id="c1", parent_run_id="r1", parent_node_id="m", status="failed", error={"message": "no"}),
    Decision(token_id="0:a:1", node_id="a", attempt=1, ir_version=2, outcome="succeeded", edges=(("b", True),)),
    RunEntry(run_id="r1", status="running", tenant="t", started_at=1.25, inputs={"who": "ada"}),
    StepEntry(run_id="r1", node_id="a", attempt=1, status="queued", queued_at=3.0),
]


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip_keeps_every_field_and_the_version(message: WireModel) -> None:
    text = message.model_dump_json(exclude_none=True)
    assert json.loads(text)["v"] == type(message).schema_version() == 1
    assert type(message).model_validate_json(text) == message


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_a_newer_version_is_refused_not_misread(message: WireModel) -> None:
    newer = {**json.loads(message.model_dump_json()), "v": type(message).schema_version() + 1}
    with pytest.raises(ValidationError) as caught:
        type(message).model_validate_json(json.dumps(newer))
    refusal = unsupported_version(caught.value)
    assert refusal is not None
    assert (refusal.model, refusal.version, refusal.known) == (type(message).__name__, 2, 1)
    assert "upgrade the reader" in str(caught.value)


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_a_message_without_v_was_written_before_versions_and_reads_as_v1(message: WireModel) -> None:
    old = json.loads(message.model_dump_json())
    del old["v"]
    assert type(message).model_validate_json(json.dumps(old)) == message


def test_an_added_field_of_the_same_version_is_ignored() -> None:
    text = json.dumps({**json.loads(TOKEN.model_dump_json()), "priority": 3})
    assert Token.model_validate_json(text) == TOKEN


def test_malformed_is_not_a_version_refusal() -> None:
    with pytest.raises(ValidationError) as caught:
        Token.model_validate_json('{"v": 1, "run_id": "r1"}')
    assert unsupported_version(caught.value) is None
    with pytest.raises(ValidationError):
        Token.model_validate({**TOKEN.model_dump(), "v": 0})


def test_messages_are_immutable() -> None:
    with pytest.raises(ValidationError):
        TOKEN.attempt = 2  # type: ignore[misc]


def test_signal_constructors_copy_the_token_identity() -> None:
    error = NodeError(type="timeout", message="slow")
    ok = CompletionSignal.succeeded(TOKEN, '"out"', ended_at_ms=9.0)
    failed = CompletionSignal.failed(TOKEN, error, worker_id="w", started_at_ms=1.0, ended_at_ms=2.0)
    for signal in (ok, failed):
        assert (signal.run_id, signal.node_id, signal.token_id, signal.attempt) == ("r1", "a", "0:a:1", 1)
    assert (ok.status, ok.output_ref, ok.error, ok.ended_at_ms) == ("succeeded", '"out"', None, 9.0)
    assert (failed.status, failed.error, failed.worker_id, failed.output_ref) == ("failed", error, "w", None)


def test_a_decided_signal_comes_from_anything_naming_a_token() -> None:
    @dataclass(frozen=True)
    class Row:
        run_id: str = "r9"
        node_id: str = "gate"
        token_id: str = "1:gate:2"
        attempt: int = 2

    signal = CompletionSignal.decided(Row(), '{"approved":true}', "approved", ended_at_ms=5.0)
    assert signal.model_dump(exclude_none=True) == {
        "v": 1,
        "run_id": "r9",
        "node_id": "gate",
        "token_id": "1:gate:2",
        "attempt": 2,
        "status": "decided",
        "output_ref": '{"approved":true}',
        "branch": "approved",
        "ended_at_ms": 5.0,
    }


def test_a_stored_event_has_no_id_and_keeps_nulls_inside_data() -> None:
    event = Event(id="5-0", type="approval_decided", run_id="r1", ts=3, data={"comment": None, "text": "a\udcff"})
    assert json.loads(event.stored()) == {
        "v": 1,
        "type": "approval_decided",
        "run_id": "r1",
        "ts": 3,
        "data": {"comment": None, "text": "a\udcff"},
    }


def _lua_sources() -> dict[str, str]:
    sources = {str(p.relative_to(REPO)): p.read_text() for p in REPO.glob("common/runs/lua/*.lua")}
    return sources | {"workers/control/_state.py (_EMIT)": _EMIT}


def test_lua_writes_the_versions_of_the_models() -> None:
    models = {"TOKEN_V": Token, "EVENT_V": Event, "LEDGER_V": RunEntry, "CHILD_END_V": ChildRunEnded}
    assert StepEntry.schema_version() == RunEntry.schema_version()
    found = {}
    for where, source in _lua_sources().items():
        for name, value in re.findall(r"^local (\w+_V) = (\d+)$", source, re.MULTILINE):
            found[(where, name)] = int(value)
            assert int(value) == models[name].schema_version(), f"{where}: {name} = {value}"
    assert {name for _, name in found} == set(models)


def test_a_signal_carries_the_ir_version_its_token_was_queued_under() -> None:
    assert CompletionSignal.succeeded(TOKEN, "1", ended_at_ms=1.0).ir_version == TOKEN.ir_version
    assert CompletionSignal.failed(TOKEN, None, ended_at_ms=1.0).ir_version == TOKEN.ir_version
