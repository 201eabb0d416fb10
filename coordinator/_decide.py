"""Deciding what a completion means: which outgoing edges are live, whether to retry, whether the run fails."""

from __future__ import annotations

from typing import Any

from common.errors import TemplateError
from common.runs.decisions import Decision
from common.runs.messages import CompletionSignal, NodeError
from common.workflow.edges import edge_live
from common.workflow.ir import IR
from common.workflow.templates import TemplateScope


def decide(ir: IR, signal: CompletionSignal, output: Any, scope: TemplateScope) -> Decision:
    """The decision ``apply_completion.lua`` applies for ``signal`` under ``ir`` (checked against its version)."""
    node = ir.nodes[signal.node_id]
    edges = ir.successors.get(signal.node_id, [])
    shared: dict[str, Any] = {
        "token_id": signal.token_id,
        "node_id": signal.node_id,
        "attempt": signal.attempt,
        "ir_version": ir.version,
        "approval": signal.status == "decided",
        "worker_id": signal.worker_id,
        "started_at": signal.started_at_ms,
        "ended_at": signal.ended_at_ms,
    }
    error = signal.error
    if signal.status != "failed":
        try:
            live = tuple((edge.to, edge_live(edge, signal.branch, output, scope)) for edge in edges)
        except TemplateError as exc:
            error = NodeError(type="condition_error", message=f"edge condition: {exc.message}", retryable=False)
        else:
            return Decision(
                **shared, outcome="succeeded", output_ref=signal.output_ref, branch=signal.branch, edges=live
            )
    error = error or NodeError(message="failed without an error", retryable=False)
    if error.retryable and signal.attempt < node.retry.max_attempts:
        delay_ms = int(node.retry.delay_s(signal.attempt) * 1000)
        return Decision(**shared, outcome="retrying", error=error, retry_delay_ms=delay_ms)
    return Decision(
        **shared,
        outcome="failed",
        error=error,
        edges=tuple((edge.to, edge.on_failure) for edge in edges),
        fail_run=not any(edge.on_failure for edge in edges),
    )
