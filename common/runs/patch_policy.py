"""Who may patch what in a running run: agents only append downstream of themselves, and only admins may weaken
an approval gate. Every service that applies patches asks these checks before it swaps the IR."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from common.auth import AgentGrant
from common.workflow.definition import WorkflowDefinition
from common.workflow.node_configs import DEFAULT_PATCH_TYPES
from common.workflow.node_types import TYPE_ALIASES

_APPEND_NODE = "/nodes/-"
_APPEND_EDGE = "/edges/-"
_CHILD_BODY_TYPES = ("loop", "map")


@dataclass(frozen=True, slots=True)
class PatchRefusal:
    """One op a principal may not apply: its index and path in the patch, and why."""

    index: int
    op: str
    path: str
    reason: str

    def __str__(self) -> str:
        return f"ops[{self.index}] ({self.op} {self.path}): {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {"index": self.index, "op": self.op, "path": self.path, "reason": self.reason}


def check_agent_patch(
    ops: Sequence[Mapping[str, Any]], definition: Mapping[str, Any], grant: AgentGrant, added_before: Iterable[str]
) -> list[PatchRefusal]:
    """What in ``ops`` the agent of ``grant`` may not do; empty when the patch only appends allowed nodes, each
    reached by a new edge from the agent or from a node it added (``added_before``: in its earlier patches)."""
    existing = {node.get("id") for node in definition.get("nodes", []) if isinstance(node, Mapping)}
    own = set(added_before)
    added: dict[str, int] = {}
    for index, op in enumerate(ops):
        if op.get("op") == "add" and op.get("path") == _APPEND_NODE and isinstance(op.get("value"), Mapping):
            node_id = op["value"].get("id")
            if isinstance(node_id, str) and node_id not in existing:
                added[node_id] = index
    sources = {grant.node_id, *own, *added}
    targets = {*own, *added}
    fed: set[str] = set()
    refusals: list[PatchRefusal] = []
    for index, op in enumerate(ops):
        kind, path = str(op.get("op")), str(op.get("path"))
        reasons: list[str] = []
        if kind == "test":
            continue
        if kind != "add":
            reasons.append(f"an agent may only add nodes and edges; '{kind}' would change or remove what exists")
        elif path == _APPEND_NODE:
            reasons += _node_refusals(op.get("value"), existing, grant.patch_types)
        elif path == _APPEND_EDGE:
            reason, target = _edge_refusal(op.get("value"), grant.node_id, sources, targets)
            reasons += [reason] if reason is not None else []
            fed.update([target] if target is not None else [])
        else:
            reasons.append(
                f"an agent may only append to {_APPEND_NODE} or {_APPEND_EDGE}; this path changes what exists"
            )
        refusals += [PatchRefusal(index, kind, path, reason) for reason in reasons]
    for node_id, index in added.items():
        if node_id not in fed:
            refusals.append(
                PatchRefusal(
                    index,
                    "add",
                    _APPEND_NODE,
                    f"node '{node_id}' needs an edge from '{grant.node_id}' or from a node it added in this patch"
                    " (an agent may only add nodes downstream of itself)",
                )
            )
    return sorted(refusals, key=lambda refusal: refusal.index)


def _node_refusals(value: Any, existing: set[Any], allowed: Sequence[str]) -> list[str]:
    if not isinstance(value, Mapping) or not isinstance(value.get("id"), str):
        return ["expected a node object with an 'id'"]
    if value["id"] in existing:
        return [f"node '{value['id']}' already exists; an agent may not replace it"]
    return _type_refusals(value, allowed, where=f"node '{value['id']}'")


def _type_refusals(node: Mapping[str, Any], allowed: Sequence[str], *, where: str) -> list[str]:
    node_type = TYPE_ALIASES.get(str(node.get("type")), str(node.get("type")))
    if node_type not in allowed:
        return [f"{where}: type '{node_type}' is not one this agent may add (allowed: {', '.join(allowed)})"]
    config = node.get("config")
    config = config if isinstance(config, Mapping) else {}
    reasons: list[str] = []
    if node_type == "agent" and "patch_workflow" in (config.get("tools") or []):
        # An added agent may not hand itself more than its creator holds.
        patch = config.get("patch")
        granted = patch.get("allowed_types", DEFAULT_PATCH_TYPES) if isinstance(patch, Mapping) else None
        extra = sorted(set(granted or DEFAULT_PATCH_TYPES) - set(allowed))
        if extra:
            reasons.append(f"{where}: may not allow its own patches to add {', '.join(extra)}")
    body = config.get("body") if node_type in _CHILD_BODY_TYPES else None
    if isinstance(body, Mapping):
        for inner in body.get("nodes") or []:
            if isinstance(inner, Mapping):
                reasons += _type_refusals(inner, allowed, where=f"{where} body node '{inner.get('id')}'")
    return reasons


def _edge_refusal(value: Any, agent_node: str, sources: set[str], targets: set[str]) -> tuple[str | None, str | None]:
    if not isinstance(value, Mapping):
        return "expected an edge object with 'from' and 'to'", None
    source, target = value.get("from"), value.get("to")
    if source not in sources:
        return (
            f"edge {source}->{target}: an agent's new edges start at '{agent_node}' or at a node it added",
            None,
        )
    if target not in targets:
        return f"edge {source}->{target}: an agent's new edges end at a node it added, not at an existing node", None
    return None, str(target)


def nodes_added(ops: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the nodes ``ops`` append."""
    return [
        op["value"]["id"]
        for op in ops
        if op.get("op") == "add" and op.get("path") == _APPEND_NODE and isinstance(op.get("value"), Mapping)
    ]


async def nodes_added_by(conn: asyncpg.Pool | asyncpg.Connection, run_id: str, author: str) -> list[str]:
    """Ids of the nodes ``author``'s applied patches of ``run_id`` appended."""
    rows = await conn.fetch(
        "SELECT ops FROM patches WHERE run_id = $1 AND author = $2 AND state = 'applied' ORDER BY to_version",
        run_id,
        author,
    )
    return [node_id for row in rows for node_id in nodes_added(row["ops"])]


def weakened_gates(old: WorkflowDefinition, new: WorkflowDefinition) -> list[str]:
    """How ``new`` weakens the approval (hitl) gates of ``old``: a gate removed or changed, an edge into or out of
    one removed or changed, or an existing node that waited for a gate reachable around it. Empty if none."""
    old_nodes = {node.id: node for node in old.nodes}
    new_nodes = {node.id: node for node in new.nodes}
    gates = [node_id for node_id, node in old_nodes.items() if node.type == "hitl"]
    if not gates:
        return []
    new_edges = {_edge_key(edge) for edge in new.edges}
    old_gated, new_gated = _gated(old, gates), _gated(new, [g for g in gates if g in new_nodes])
    problems: list[str] = []
    for gate in gates:
        if gate not in new_nodes:
            problems.append(f"hitl node '{gate}' removed")
            continue
        changed = _changed_fields(old_nodes[gate].model_dump(), new_nodes[gate].model_dump())
        if changed:
            problems.append(f"hitl node '{gate}': {', '.join(changed)} changed")
        for edge in old.edges:
            key = _edge_key(edge)
            if gate in (edge.source, edge.to) and key not in new_edges:
                problems.append(f"hitl node '{gate}': edge {edge.source}->{edge.to} removed or changed")
        bypassed = sorted((old_gated[gate] & new_nodes.keys()) - new_gated[gate])
        if bypassed:
            problems.append(f"hitl node '{gate}': {', '.join(bypassed)} no longer wait for it (a path goes around it)")
    return problems


def _edge_key(edge: Any) -> tuple[str, str, str | None, str | None]:
    return (edge.source, edge.to, edge.when, edge.branch)


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    changed: list[str] = []
    for name in sorted(old.keys() | new.keys()):
        before, after = old.get(name), new.get(name)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changed += _changed_fields(before, after, f"{prefix}{name}.")
        elif before != after:
            changed.append(f"{prefix}{name}")
    return changed


def _gated(definition: WorkflowDefinition, gates: Sequence[str]) -> dict[str, set[str]]:
    """For each gate, the nodes every path from a root to them passes through it (they cannot run around it)."""
    successors: dict[str, list[str]] = {node.id: [] for node in definition.nodes}
    has_incoming: set[str] = set()
    for edge in definition.edges:
        successors.setdefault(edge.source, []).append(edge.to)
        has_incoming.add(edge.to)
    roots = [node_id for node_id in successors if node_id not in has_incoming]
    everything = _reachable(successors, roots, blocked=None)
    return {gate: everything - _reachable(successors, roots, blocked=gate) - {gate} for gate in gates}


def _reachable(successors: Mapping[str, list[str]], roots: Sequence[str], *, blocked: str | None) -> set[str]:
    seen: set[str] = set()
    stack = [root for root in roots if root != blocked]
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        stack.extend(nxt for nxt in successors.get(node_id, ()) if nxt != blocked and nxt not in seen)
    return seen
