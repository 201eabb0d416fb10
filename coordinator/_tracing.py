"""The coordinator's spans: one per applied completion signal, in the trace of the run it belongs to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from common.runs.decisions import Decision
from common.runs.ir_cache import CachedIr
from common.runs.messages import CompletionSignal
from common.tracing import AttributeValue, Tracing


def record_applied(
    tracing: Tracing,
    planned: Sequence[tuple[CompletionSignal, CachedIr, Decision]],
    results: Sequence[Any],
    started_ms: float,
    ended_ms: float,
) -> None:
    """A span per signal of a batch (each covering the batch's decide-and-apply time): what was decided for the
    node (retry, fail, which edges went live, so which nodes were routed next) and what the script answered."""
    for (signal, _, decision), result in zip(planned, results, strict=True):
        if signal.traceparent is None:
            continue
        live = [target for target, is_live in decision.edges or () if is_live]
        attributes: dict[str, AttributeValue] = {
            "aob.run_id": signal.run_id,
            "aob.node_id": signal.node_id,
            "aob.token_id": signal.token_id,
            "aob.attempt": signal.attempt,
            "aob.signal_status": signal.status,
            "aob.decision": decision.outcome,
            "aob.apply_result": str(result[0]),
            "aob.run_status": str(result[1]),
            "aob.live_edges": ",".join(live),
            "aob.batch_size": len(planned),
        }
        if decision.retry_delay_ms is not None:
            attributes["aob.retry_delay_ms"] = decision.retry_delay_ms
        name = f"aob.coordinator.apply {signal.node_id}"
        tracing.record(name, parent=signal.traceparent, start_ms=started_ms, end_ms=ended_ms, attributes=attributes)
