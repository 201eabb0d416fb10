"""The built-in steps. Each is instant: a delay node already waited in ``wf.delayed`` before it got here."""

from __future__ import annotations

from typing import Any, ClassVar

from common.errors import NodeFailed
from workers._handler import NodeContext, NodeResult


def _passthrough(ctx: NodeContext) -> Any:
    """The upstream output; with several upstreams, their object outputs merged in edge order."""
    outputs = [ctx.upstream.get(node_id) for node_id in ctx.predecessors]
    if len(outputs) == 1:
        return outputs[0]
    merged: dict[str, Any] = {}
    for output in outputs:
        if isinstance(output, dict):
            merged.update(output)
    return merged


class BuiltinHandler:
    """Dispatches on the node's type."""

    node_type: ClassVar[str] = "builtin"
    reports_start: ClassVar[bool] = False

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        kind = ctx.node.type
        if kind == "noop":
            return NodeResult(output=None)
        if kind == "transform":
            return NodeResult(output=ctx.config.get("output"))
        if kind == "delay":
            return NodeResult(output={"delayed_s": ctx.config.get("seconds", 0)})
        if kind == "branch":
            return NodeResult(output=_passthrough(ctx))
        raise NodeFailed(f"built-in worker: no step named {kind!r}", retryable=False, error_type="unknown_type")
