"""Which nodes a runtime patch touches, and refusing it when one of them has already started."""

from __future__ import annotations

import json
from typing import Any

from common.workflow.definition import WorkflowDefinition
from orchestrator._errors import ApiError

# Only a node nothing has happened to yet may change; queued/running/ended nodes keep the spec they ran with.
_UNSTARTED = frozenset({"pending"})


def _edge_key(edge: dict[str, Any]) -> str:
    return json.dumps(edge, sort_keys=True)


def touched_nodes(old: WorkflowDefinition, new: WorkflowDefinition) -> dict[str, str]:
    """Existing nodes the patch changes, each with how: removed, changed, or an edge in/out added or removed."""
    touched: dict[str, str] = {}
    old_nodes = {n.id: n.model_dump(mode="json", by_alias=True, exclude_none=True) for n in old.nodes}
    new_nodes = {n.id: n.model_dump(mode="json", by_alias=True, exclude_none=True) for n in new.nodes}
    for node_id, spec in old_nodes.items():
        if node_id not in new_nodes:
            touched[node_id] = "removed"
        elif new_nodes[node_id] != spec:
            touched[node_id] = "changed"
    old_edges = {_edge_key(e.model_dump(mode="json", by_alias=True, exclude_none=True)): e for e in old.edges}
    new_edges = {_edge_key(e.model_dump(mode="json", by_alias=True, exclude_none=True)): e for e in new.edges}
    for key in old_edges.keys() - new_edges.keys():
        edge = old_edges[key]
        # A removed edge changes what its source already decided and what its target waits for.
        for node_id in (edge.source, edge.to):
            if node_id in old_nodes:
                touched.setdefault(node_id, f"edge {edge.source}->{edge.to} removed or changed")
    for key in new_edges.keys() - old_edges.keys():
        edge = new_edges[key]
        if edge.to in old_nodes:
            touched.setdefault(edge.to, f"edge {edge.source}->{edge.to} added into it")
    return touched


def refuse_started(touched: dict[str, str], states: dict[str, str]) -> None:
    """409 naming each touched node that has started (its state is not pending)."""
    started = {
        node_id: (how, json.loads(raw).get("status"))
        for node_id, how in touched.items()
        if (raw := states.get(node_id)) is not None and json.loads(raw).get("status") not in _UNSTARTED
    }
    if started:
        lines = [
            f"node '{node_id}' is {status}; a patch may not touch it ({how})"
            for node_id, (how, status) in started.items()
        ]
        raise ApiError(409, "; ".join(lines), code="node_started", details=lines)
