"""The IR: the compiled, executable form of a workflow definition, stored as JSON at ``ir:{R}``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

IR_SCHEMA_VERSION = 1
# Built-in steps are instant, so one stream and one worker pool serve them all.
BUILTIN_TYPES = frozenset({"noop", "transform", "delay", "branch"})
# Nodes that run child runs share the control worker. Their handler renders their configs itself: bodies and
# per-child inputs use names (``item``, ``loop``, a body's own nodes) that only exist per child.
CONTROL_TYPES = frozenset({"workflow", "loop", "map"})


def task_stream_type(node_type: str) -> str:
    """The ``wf.tasks.<type>`` stream that carries tokens of ``node_type``."""
    if node_type in BUILTIN_TYPES:
        return "builtin"
    return "control" if node_type in CONTROL_TYPES else node_type


# One task stream, consumer group and kind of worker (``aob worker <type>``) per entry.
WORKER_TYPES: tuple[str, ...] = ("agent", "builtin", "control", "hitl", "http")


class RetryPolicy(BaseModel):
    """How often and how fast a failed node is tried again."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=60.0, ge=0)
    multiplier: float = Field(default=2.0, ge=1)

    def delay_s(self, attempt: int) -> float:
        """Backoff before attempt ``attempt + 1`` after attempt ``attempt`` failed."""
        return float(min(self.max_backoff_s, self.backoff_s * self.multiplier ** (attempt - 1)))


class IrEdge(BaseModel):
    """An outgoing edge of a node: live when its source succeeded and its guard holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    to: str
    when: str | None = None
    branch: str | None = None
    on_failure: bool = False


class IrNode(BaseModel):
    """One executable node; ``known`` is false for types the registry does not know."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    type: str
    name: str | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float | None = None
    join: Literal["all", "any"] = "all"
    known: bool = True


class IR(BaseModel):
    """Nodes by id, successors with their guards, in-degrees and entry nodes, at one IR version."""

    model_config = ConfigDict(extra="forbid")

    v: int = IR_SCHEMA_VERSION
    version: int = 1
    name: str
    nodes: dict[str, IrNode]
    successors: dict[str, list[IrEdge]]
    indegree: dict[str, int]
    entries: list[str]
    agent_count: int = 0
    outputs: dict[str, Any] | None = None
    inputs_schema: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)

    def topology(self) -> dict[str, Any]:
        """The compact graph the run-state scripts walk: ``{"n": {node: [indegree, join_any, routing,
        [[to, on_failure]...]]}, "o": 1 if the workflow has output templates else 0}``.

        ``routing`` is ``"unknown"`` for skipped-through types, ``"delay:<seconds>"`` for delay nodes
        (which wait in ``wf.delayed``, then go to the built-in stream), else the task stream's type.
        """
        topo: dict[str, list[Any]] = {}
        for node_id, node in self.nodes.items():
            if not node.known:
                routing = "unknown"
            elif node.type == "delay":
                routing = f"delay:{float(node.config.get('seconds', 0))}"
            else:
                routing = task_stream_type(node.type)
            succ = [[edge.to, 1 if edge.on_failure else 0] for edge in self.successors.get(node_id, [])]
            topo[node_id] = [self.indegree.get(node_id, 0), 1 if node.join == "any" else 0, routing, succ]
        return {"n": topo, "o": 1 if self.outputs else 0}
