"""Deciding what a completion means: which outgoing edges are live, whether to retry, whether the run fails."""

from __future__ import annotations

from typing import Any

from common.errors import TemplateError
from common.runs.messages import CompletionSignal, NodeError
from common.workflow.edges import edge_live
from common.workflow.ir import IR
from common.workflow.templates import TemplateScope


def decide(ir: IR, signal: CompletionSignal, output: Any, scope: TemplateScope, *, now_ms: float) -> dict[str, Any]:
    """The decision ``apply_completion.lua`` applies for ``signal`` under ``ir``."""
    node = ir.nodes[signal.node_id]
    edges = ir.successors.get(signal.node_id, [])
    decision: dict[str, Any] = {
        "token_id": signal.token_id,
        "node_id": signal.node_id,
        "attempt": signal.attempt,
        "worker_id": signal.worker_id,
        "started_at": signal.started_at_ms,
        "ended_at": signal.ended_at_ms,
    }
    if signal.status == "decided":
        decision["approval"] = True
    error = signal.error
    if signal.status != "failed":
        try:
            live = [[edge.to, edge_live(edge, signal.branch, output, scope)] for edge in edges]
        except TemplateError as exc:
            error = NodeError(type="condition_error", message=f"edge condition: {exc.message}", retryable=False)
        else:
            decision.update(outcome="succeeded", output_ref=signal.output_ref, branch=signal.branch, edges=live)
            return _without_nulls(decision)
    error = error or NodeError(message="failed without an error", retryable=False)
    decision["error"] = error.model_dump()
    if error.retryable and signal.attempt < node.retry.max_attempts:
        delay_ms = int(node.retry.delay_s(signal.attempt) * 1000)
        decision.update(outcome="retrying", retry_due_ms=now_ms + delay_ms)
        return _without_nulls(decision)
    handlers = [edge for edge in edges if edge.on_failure]
    decision.update(
        outcome="failed",
        edges=[[edge.to, edge.on_failure] for edge in edges],
        fail_run=not handlers,
    )
    return _without_nulls(decision)


def _without_nulls(decision: dict[str, Any]) -> dict[str, Any]:
    # Lua's cjson turns JSON null into a userdata value that is truthy; leaving the key out keeps it nil.
    return {k: v for k, v in decision.items() if v is not None}
