"""Ledger entries: the union on ``kind``, the ``v`` policy, and how run entries merge."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from common.runs.ledger import RunEntry, StepEntry, parse_ledger_entry
from common.runs.messages import unsupported_version

# As the scripts write them (cjson leaves nil fields out).
RUN = {
    "v": 1,
    "kind": "run",
    "run_id": "r",
    "status": "running",
    "ir_version": 1,
    "started_at": 1712.5,
    "tenant": "t",
    "workflow_id": "w",
    "workflow_name": "n",
    "version": 3,
    "inputs": {"x": 1},
}
STEP = {
    "v": 1,
    "kind": "step",
    "run_id": "r",
    "node_id": "a",
    "attempt": 2,
    "status": "failed",
    "queued_at": 1.5,
    "exec_ms": 0.25,
    "error": {"type": "crash", "message": "boom", "retryable": True, "extra": 1},
}


def test_the_kind_picks_the_model() -> None:
    run = parse_ledger_entry(json.dumps(RUN))
    step = parse_ledger_entry(json.dumps(STEP))
    assert isinstance(run, RunEntry) and run.version == 3 and run.inputs == {"x": 1}
    assert isinstance(step, StepEntry) and step.attempt == 2 and step.exec_ms == 0.25
    # The recorder copies the error as written, fields it does not know included.
    assert step.error == STEP["error"]


@pytest.mark.parametrize("entry", [RUN, STEP], ids=["run", "step"])
def test_a_newer_entry_is_refused(entry: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ledger_entry(json.dumps({**entry, "v": 2}))
    assert unsupported_version(caught.value) is not None


@pytest.mark.parametrize("kind", ["nodes", None])
def test_an_unknown_kind_is_malformed(kind: str | None) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_ledger_entry(json.dumps({**RUN, "kind": kind}))
    assert unsupported_version(caught.value) is None


def test_entries_carry_their_order_and_default_to_unnumbered() -> None:
    numbered = parse_ledger_entry(
        json.dumps({"kind": "step", "run_id": "r", "node_id": "n", "status": "queued", "seq": 7})
    )
    legacy = parse_ledger_entry(json.dumps({"kind": "run", "run_id": "r", "status": "running"}))
    assert (numbered.seq, legacy.seq) == (7, 0)


def test_what_rebuilding_needs_reads_as_the_scripts_write_it() -> None:
    run = parse_ledger_entry(json.dumps({**RUN, "epoch": 2, "deadline_at": 9.5, "reset_nodes": {}, "ir": "{}"}))
    step = parse_ledger_entry(json.dumps({**STEP, "epoch": 2, "branch": "approved"}))
    assert isinstance(run, RunEntry) and (run.epoch, run.deadline_at, run.reset_nodes, run.ir) == (2, 9.5, [], "{}")
    assert isinstance(step, StepEntry) and (step.epoch, step.branch) == (2, "approved")
