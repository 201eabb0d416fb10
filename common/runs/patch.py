"""Patching a running run: swap its IR for a new version and schedule what the patch made runnable.

The script re-checks, against live state and in the same atomic step as the swap, that every node the patch
touches is still pending; and it recounts the joins of every node whose incoming edges changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from common.runs.scripts import Scripts
from common.runs.view import RunView, load_run_view
from common.workflow.ir import IR, IrEdge

MAX_CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class PatchOutcome:
    """``status`` is ``ok``, ``refused`` (``refusals`` say which nodes had started), ``conflict`` (the IR
    changed meanwhile), ``ended`` or ``missing``."""

    status: str
    ir_version: int | None = None
    added_nodes: list[str] = field(default_factory=list)
    added_edges: list[dict[str, str]] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)


def _edges(ir: IR) -> dict[tuple[str, str], IrEdge]:
    return {(src, edge.to): edge for src, edges in ir.successors.items() for edge in edges}


def touched_nodes(old: IR, new: IR) -> dict[str, str]:
    """Existing nodes the patch changes, each with how: removed, changed, or an edge in/out added or removed."""
    touched: dict[str, str] = {}
    for node_id, node in old.nodes.items():
        if node_id not in new.nodes:
            touched[node_id] = "removed"
        elif new.nodes[node_id] != node:
            touched[node_id] = "changed"
    old_edges, new_edges = _edges(old), _edges(new)
    for (src, to), edge in old_edges.items():
        if new_edges.get((src, to)) != edge:
            # A removed edge changes what its source already decided and what its target waits for.
            for node_id in (src, to):
                touched.setdefault(node_id, f"edge {src}->{to} removed or changed")
    for src, to in new_edges.keys() - old_edges.keys():
        if to in old.nodes:
            touched.setdefault(to, f"edge {src}->{to} added into it")
    return touched


def _incoming(ir: IR) -> dict[str, list[tuple[str, IrEdge]]]:
    incoming: dict[str, list[tuple[str, IrEdge]]] = {node_id: [] for node_id in ir.nodes}
    for src, edges in ir.successors.items():
        for edge in edges:
            incoming[edge.to].append((src, edge))
    return incoming


def _rejoined(old: IR, new: IR, view: RunView) -> list[list[Any]]:
    """Every node whose incoming edges changed (added nodes too), with each incoming edge as
    ``[source, on_failure, live if the source succeeded (None: not known yet)]`` for the script to recount."""
    old_in, new_in = _incoming(old), _incoming(new)
    targets: list[list[Any]] = []
    for node_id, edges in new_in.items():
        if node_id in old_in and sorted(edges, key=repr) == sorted(old_in[node_id], key=repr):
            continue
        inbound = [[src, edge.on_failure, view.edge_live_after_success(src, edge)] for src, edge in edges]
        targets.append([node_id, inbound])
    return targets


async def patch_run(
    scripts: Scripts,
    run_id: str,
    new_ir: IR,
    *,
    expected_version: int,
    author: str,
    reason: str | None = None,
    max_agents: int = 5,
) -> PatchOutcome:
    """Swap the run's IR for ``new_ir`` if it is still at ``expected_version``; see ``PatchOutcome``."""
    for _ in range(MAX_CONFLICT_RETRIES):
        view = await load_run_view(scripts, run_id)
        if view.ir is None:
            return PatchOutcome("missing")
        old = view.ir
        added_nodes = [node_id for node_id in new_ir.nodes if node_id not in old.nodes]
        old_edges = _edges(old)
        added_edges = [{"from": src, "to": to} for src, to in _edges(new_ir) if (src, to) not in old_edges]
        touched = touched_nodes(old, new_ir)
        patch = {"author": author, "added_nodes": added_nodes, "added_edges": added_edges}
        if reason:
            patch["reason"] = reason
        ir = new_ir.model_copy(update={"version": expected_version + 1})
        result = await scripts.run_script(
            "patch_run",
            run_id,
            expected_version,
            ir.model_dump_json(),
            json.dumps(ir.topology()),
            json.dumps(patch),
            json.dumps(sorted(touched.items())),
            json.dumps(_rejoined(old, ir, view), allow_nan=False),
            max_agents,
        )
        status, detail = str(result[0]), str(result[1])
        if status == "ok":
            return PatchOutcome("ok", int(detail), added_nodes, added_edges)
        if status == "refused":
            refusals = [
                f"node '{node_id}' is {state}; a patch may not touch it ({how})"
                for node_id, state, how in json.loads(detail)
            ]
            return PatchOutcome("refused", expected_version, refusals=refusals)
        if status != "conflict" or int(detail) != expected_version:
            return PatchOutcome(status, int(detail) if status == "conflict" else None)
        # Same version but a source finished between our read and the swap: read again and retry.
    return PatchOutcome("conflict", expected_version)
