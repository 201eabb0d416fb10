"""Resuming an ended run: its failed and unfinished nodes (or one chosen node) and what follows run again."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from common.errors import AobError
from common.json_schema import InvalidSchema, instance_errors
from common.runs.admission import count_active
from common.runs.scripts import Scripts
from common.runs.view import RunView, load_run_view
from common.workflow.ir import IR, IrEdge

UNFINISHED = frozenset({"failed", "cancelled", "queued", "running", "waiting", "pending"})


class InvalidInputs(AobError):
    """Inputs given to a resume break the run's inputs schema; ``details`` lists ``{path, message}`` per fault."""

    code = "invalid_inputs"


def check_resume_inputs(ir: IR, inputs: dict[str, Any]) -> None:
    """Raise ``InvalidInputs`` naming every place ``inputs`` breaks ``ir``'s inputs schema."""
    if not ir.inputs_schema:
        return
    try:
        errors = instance_errors(ir.inputs_schema, inputs)
    except InvalidSchema as exc:
        raise InvalidInputs(f"the run's inputs schema cannot be used: {exc.message}") from None
    if errors:
        details = [{"path": error.at("inputs"), "message": error.message} for error in errors]
        raise InvalidInputs("; ".join(f"{d['path']}: {d['message']}" for d in details), details=details)


@dataclass(frozen=True)
class ResumeOutcome:
    """``status`` is ``ok``, ``not_ended``, ``conflict`` or ``missing``; ``nodes`` are the ones reset."""

    status: str
    nodes: list[str] = field(default_factory=list)


def _graph(ir: IR) -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_nodes_from(ir.nodes)
    graph.add_edges_from((src, edge.to) for src, edges in ir.successors.items() for edge in edges)
    return graph


def nodes_to_reset(ir: IR, view: RunView, from_node: str | None) -> list[str]:
    """The seeds (every failed/unfinished node, and ``from_node``) and all their descendants, in IR order."""
    # Whatever did not succeed runs again (a failed, cancelled or never reached node), so a resumed run only
    # succeeds when every node did; ``from_node`` adds itself and what follows it.
    seeds = {n for n in ir.nodes if view.states.get(n, {}).get("status", "pending") in UNFINISHED}
    if from_node is not None:
        if from_node not in ir.nodes:
            raise AobError(f"from_node: unknown node {from_node!r} (known: {', '.join(ir.nodes)})")
        seeds.add(from_node)
    graph = _graph(ir)
    reset = set(seeds)
    for seed in seeds:
        reset |= nx.descendants(graph, seed)
    return [node_id for node_id in ir.nodes if node_id in reset]


def _live_from_kept(view: RunView, src: str, edge: IrEdge) -> bool:
    """Whether ``edge`` from a kept (ended) node is live, as it was or would have been when its source ended."""
    state = view.states.get(src, {})
    status = state.get("status")
    if status == "succeeded":
        return bool(view.edge_live_after_success(src, edge))
    if status == "failed":
        return edge.on_failure
    if status == "skipped":
        return state.get("reason") == "unknown node type" and not edge.on_failure
    # A cancelled node decided nothing: its paths are dead.
    return False


async def resume_run(
    scripts: Scripts,
    run_id: str,
    *,
    from_node: str | None = None,
    inputs: dict[str, Any] | None = None,
    max_agents: int = 5,
) -> ResumeOutcome:
    """Run an ended run again from where it failed (or from ``from_node``) in the same run; ``inputs`` replace its
    inputs for every node that runs from now on. Raises ``InvalidInputs`` and ``AobError`` (unknown node)."""
    view = await load_run_view(scripts, run_id)
    if view.ir is None:
        return ResumeOutcome("missing")
    ir = view.ir
    if inputs is not None:
        check_resume_inputs(ir, inputs)
        # Edges from kept nodes into the reset ones are resolved now, so under the inputs the run goes on with.
        view.inputs = inputs
    reset = nodes_to_reset(ir, view, from_node)
    reset_set = set(reset)
    edges: list[list[object]] = []
    for src, out_edges in ir.successors.items():
        if src in reset_set:
            continue
        for edge in out_edges:
            if edge.to not in reset_set:
                continue
            edges.append([edge.to, _live_from_kept(view, src, edge)])
    roots = [node_id for node_id in reset if ir.indegree.get(node_id, 0) == 0]
    result = await scripts.run_script(
        "resume_run",
        run_id,
        view.epoch,
        json.dumps(reset),
        json.dumps(edges),
        json.dumps(roots),
        json.dumps(ir.topology()),
        max_agents,
        from_node or "",
        json.dumps(inputs) if inputs is not None else "",
    )
    if result[0] != "ok":
        return ResumeOutcome(str(result[0]))
    # Children the resumed run starts join this set: it must not expire under them.
    await scripts.redis.persist(scripts.keys.child_runs(run_id))
    await count_active(scripts.redis, scripts.keys, run_id)
    return ResumeOutcome("ok", reset)
