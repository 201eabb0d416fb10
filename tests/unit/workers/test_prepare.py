"""Fencing: which tokens the worker refuses to run (issue 13)."""

from __future__ import annotations

import json

import pytest

from common.runs.messages import Token
from workers._prepare import _stale_reason


def token(token_id: str, attempt: int, purpose: str = "run") -> Token:
    return Token(
        token_id=token_id, run_id="r", node_id="n", type="http", attempt=attempt, ir_version=1, purpose=purpose
    )


def node(status: str, attempt: int) -> str:
    return json.dumps({"status": status, "attempt": attempt})


@pytest.mark.parametrize("status", ["queued", "running", "waiting"])
def test_the_token_its_node_waits_for_runs(status: str) -> None:
    assert _stale_reason(token("1:n:2", 2), {"epoch": "1"}, node(status, 2)) is None


def test_a_token_of_an_older_epoch_is_stale() -> None:
    reason = _stale_reason(token("0:n:1", 1), {"epoch": "1"}, node("queued", 1))
    assert reason is not None and "epoch 0" in reason


@pytest.mark.parametrize(("status", "attempt"), [("queued", 3), ("succeeded", 2), ("cancelled", 2), ("pending", 0)])
def test_a_token_its_node_no_longer_waits_for_is_stale(status: str, attempt: int) -> None:
    assert _stale_reason(token("0:n:2", 2), {"epoch": None}, node(status, attempt)) is not None


def test_an_approval_timeout_token_is_fenced_by_epoch_only() -> None:
    assert _stale_reason(token("0:n:1", 1, "approval_timeout"), {"epoch": "0"}, node("waiting", 1)) is None
    assert _stale_reason(token("0:n:1", 1, "approval_timeout"), {"epoch": "1"}, node("waiting", 1)) is not None
