"""Whether an edge is live once its source succeeded: its failure flag, branch and ``when`` condition."""

from __future__ import annotations

from typing import Any

from common.workflow.ir import IR, IrEdge
from common.workflow.templates import TemplateScope, evaluate_condition


def needs_output(ir: IR, node_id: str) -> bool:
    """Whether deciding on ``node_id`` needs its output (some outgoing edge has a condition)."""
    return any(edge.when for edge in ir.successors.get(node_id, []))


def edge_live(edge: IrEdge, branch: str | None, output: Any, scope: TemplateScope) -> bool:
    """Whether ``edge`` is live after its source succeeded with ``output`` and ``branch``."""
    if edge.on_failure:
        return False
    if edge.branch is not None and edge.branch != branch:
        return False
    if edge.when:
        return evaluate_condition(edge.when, output, scope)
    return True
