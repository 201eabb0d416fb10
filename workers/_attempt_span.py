"""What a node attempt's span says: which attempt of which node, how long its token queued, how it ended."""

from __future__ import annotations

from common.runs.messages import CompletionSignal
from common.tracing import AttributeValue, SpanHandle
from workers._handler import NodeContext


def attempt_attributes(ctx: NodeContext, entry_id: str, worker_id: str, now_ms: float) -> dict[str, AttributeValue]:
    """The span's attributes at pick-up; queue time runs from the token's stream entry (its id is the time Redis
    added it: for a delay or a retry, when it fell due) to now, so it includes clock skew between the hosts."""
    token = ctx.token
    return {
        "aob.run_id": token.run_id,
        "aob.node_id": token.node_id,
        "aob.node_type": ctx.node.type,
        "aob.token_id": token.token_id,
        "aob.attempt": token.attempt,
        "aob.retries": token.attempt - 1,
        "aob.worker_id": worker_id,
        "aob.queue_ms": max(0.0, now_ms - int(entry_id.partition("-")[0])),
    }


def describe_outcome(span: SpanHandle, signal: CompletionSignal | None, started_ms: float, ended_ms: float) -> None:
    """Execution time and outcome on the span; a failed attempt's span has status ERROR (with its error type)."""
    span.set_attribute("aob.exec_ms", round(ended_ms - started_ms, 3))
    span.set_attribute("aob.outcome", "cancelled" if signal is None else signal.status)
    if signal is not None and signal.error is not None:
        span.set_attribute("aob.error_type", signal.error.type)
        span.set_attribute("aob.retryable", signal.error.retryable)
        span.fail(f"{signal.error.type}: {signal.error.message}")
