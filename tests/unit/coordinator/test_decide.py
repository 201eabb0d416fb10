"""``decide``: one immutable ``Decision`` per completion, serialised for Lua without nulls."""

from __future__ import annotations

import json
from typing import Any

from common.runs.messages import CompletionSignal, NodeError, Token
from common.workflow.compiler import compile_definition
from common.workflow.ir import IR
from common.workflow.templates import TemplateScope
from coordinator._decide import decide

SCOPE = TemplateScope(inputs={}, nodes={})


def _ir(**a: Any) -> IR:
    definition = {
        "name": "d",
        "nodes": [{"id": "a", "type": "noop", **a}, {"id": "b", "type": "noop"}, {"id": "h", "type": "noop"}],
        "edges": [{"from": "a", "to": "b", "when": "output.ok"}, {"from": "a", "to": "h", "when": "failed"}],
    }
    return compile_definition(definition, version=4).ir


def _token(attempt: int = 1) -> Token:
    return Token(token_id=f"0:a:{attempt}", run_id="r", node_id="a", type="builtin", attempt=attempt, ir_version=4)


def test_success_resolves_each_edge_and_leaves_nulls_out() -> None:
    signal = CompletionSignal.succeeded(_token(), '{"ok":true}', worker_id="w", started_at_ms=1.0, ended_at_ms=2.0)
    decision = decide(_ir(), signal, {"ok": True}, SCOPE)
    assert json.loads(decision.for_lua()) == {
        "v": 1,
        "token_id": "0:a:1",
        "node_id": "a",
        "attempt": 1,
        "ir_version": 4,
        "outcome": "succeeded",
        "output_ref": '{"ok":true}',
        "edges": [["b", True], ["h", False]],
        "approval": False,
        "fail_run": False,
        "worker_id": "w",
        "started_at": 1.0,
        "ended_at": 2.0,
    }


def test_a_retryable_failure_below_max_attempts_retries_after_the_backoff() -> None:
    ir = _ir(retry={"max_attempts": 3, "backoff_s": 2})
    signal = CompletionSignal.failed(_token(), NodeError(message="flaky"), ended_at_ms=2.0)
    decision = decide(ir, signal, None, SCOPE)
    assert (decision.outcome, decision.retry_delay_ms, decision.edges) == ("retrying", 2000, None)
    assert decision.error == NodeError(message="flaky")


def test_a_final_failure_takes_failure_edges_and_fails_the_run_only_without_one() -> None:
    signal = CompletionSignal.failed(_token(), None, ended_at_ms=2.0)
    decision = decide(_ir(), signal, None, SCOPE)
    assert (decision.outcome, decision.edges, decision.fail_run) == ("failed", (("b", False), ("h", True)), False)
    assert decision.error == NodeError(message="failed without an error", retryable=False)


def test_a_decided_approval_is_marked() -> None:
    signal = CompletionSignal.decided(_token(), '{"ok":false}', "approved", ended_at_ms=2.0)
    decision = decide(_ir(), signal, {"ok": False}, SCOPE)
    assert decision.approval and decision.outcome == "succeeded"
    assert decision.edges == (("b", False), ("h", False))
