"""Patching a running run: swap its IR for a new version and schedule what the patch made runnable."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from common.runs.scripts import Scripts
from common.runs.view import load_run_view
from common.workflow.ir import IR

MAX_CONFLICT_RETRIES = 3


@dataclass(frozen=True)
class PatchOutcome:
    """``status`` is ``ok``, ``conflict`` (the IR changed meanwhile), ``ended`` or ``missing``."""

    status: str
    ir_version: int | None = None
    added_nodes: list[str] = field(default_factory=list)
    added_edges: list[dict[str, str]] = field(default_factory=list)


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
        old_edges = {(src, e.to) for src, edges in old.successors.items() for e in edges}
        added_edges: list[dict[str, str]] = []
        from_existing: list[list[Any]] = []
        for src, edges in new_ir.successors.items():
            for edge in edges:
                if (src, edge.to) in old_edges:
                    continue
                added_edges.append({"from": src, "to": edge.to})
                if src in old.nodes:
                    from_existing.append([src, edge.to, view.edge_live_after_success(src, edge), edge.on_failure])
        roots = [node_id for node_id in added_nodes if new_ir.indegree.get(node_id, 0) == 0]
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
            json.dumps([[a, b, live, 1 if f else 0] for a, b, live, f in from_existing], allow_nan=False),
            json.dumps(roots),
            max_agents,
        )
        status, detail = str(result[0]), str(result[1])
        if status == "ok":
            return PatchOutcome("ok", int(detail), added_nodes, added_edges)
        if status != "conflict" or int(detail) != expected_version:
            return PatchOutcome(status, int(detail) if status == "conflict" else None)
        # Same version but a source finished between our read and the swap: read again and retry.
    return PatchOutcome("conflict", expected_version)
