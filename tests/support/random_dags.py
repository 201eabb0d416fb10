"""Random small workflows and runtime patches for property tests, and what a run of one should end with.

Definitions use ``scripted`` nodes (see ``tests.support.scripted``), ``noop``, ``transform``, ``delay`` and an
unknown type.
Edges only go from an earlier node to a later one, so every definition is a DAG in list order; a patch appends its
nodes and adds edges the same way, unless it is meant to be invalid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import networkx as nx
from hypothesis import strategies as st

# Only nodes whose output is a number get a `when` on their edges: a condition on null fails the node instead.
NUMERIC_OUTPUT_TYPES = frozenset({"scripted", "transform"})
CONDITION = "output > 1"
UNKNOWN_TYPE = "mystery"
EdgeKind = Literal["plain", "when", "failed"]


@st.composite
def node_specs(draw: st.DrawFn, node_id: str) -> dict[str, Any]:
    """One node: noop, transform, scripted (failing some attempts, maybe retried) or of an unknown type."""
    kind = draw(st.sampled_from(["noop", "scripted", "transform", "delay", UNKNOWN_TYPE]))
    node: dict[str, Any] = {"id": node_id, "type": kind, "config": {}}
    if kind == "transform":
        node["config"] = {"output": draw(st.integers(0, 3))}
    elif kind == "delay":
        # Long enough never to come due by itself: only a step that lets time pass moves it on.
        node["config"] = {"seconds": 3600}
    elif kind == "scripted":
        node["config"] = {
            "fail_attempts": draw(st.integers(0, 2)),
            "output": draw(st.integers(0, 3)),
            "retryable": draw(st.booleans()),
        }
        # Retries without backoff: the timer's next tick makes them due, so no step waits for the clock.
        node["retry"] = {"max_attempts": draw(st.integers(1, 3)), "backoff_s": 0}
    if draw(st.booleans()):
        node["join"] = "any"
    return node


def edge(source: dict[str, Any], to: str, kind: EdgeKind) -> dict[str, Any]:
    """The edge ``source -> to`` of ``kind``; a ``when`` from a node without a numeric output stays plain."""
    spec: dict[str, Any] = {"from": source["id"], "to": to}
    if kind == "failed":
        spec["when"] = "failed"
    elif kind == "when" and source["type"] in NUMERIC_OUTPUT_TYPES:
        spec["when"] = CONDITION
    return spec


edge_kinds = st.sampled_from(["plain", "when", "failed"])


@st.composite
def dags(draw: st.DrawFn, min_nodes: int = 3, max_nodes: int = 8) -> dict[str, Any]:
    """A definition of ``min_nodes``..``max_nodes`` nodes ``n0, n1, ...`` with forward edges only."""
    count = draw(st.integers(min_nodes, max_nodes))
    nodes = [draw(node_specs(f"n{i}")) for i in range(count)]
    edges = []
    for j in range(1, count):
        sources = draw(st.lists(st.integers(0, j - 1), max_size=min(j, 3), unique=True))
        edges += [edge(nodes[i], nodes[j]["id"], draw(edge_kinds)) for i in sorted(sources)]
    return {"name": "prop", "nodes": nodes, "edges": edges}


@dataclass(frozen=True)
class PatchPlan:
    """A patch in terms that fit any definition: ``edges`` pick their ends by index (modulo the node count) among
    the existing nodes followed by the new ones. ``kind`` ``cycle`` and ``unknown_node`` make it invalid."""

    kind: Literal["valid", "cycle", "unknown_node"]
    new_nodes: tuple[dict[str, Any], ...]
    edges: tuple[tuple[int, int, EdgeKind], ...]

    def apply(self, definition: dict[str, Any], new_ids: list[str]) -> tuple[dict[str, Any], list[str]]:
        """The patched definition, and the existing nodes it adds an incoming edge to (those it touches)."""
        existing = [node["id"] for node in definition["nodes"]]
        added = [spec | {"id": node_id} for spec, node_id in zip(self.new_nodes, new_ids, strict=True)]
        nodes = [*definition["nodes"], *added]
        by_id = {node["id"]: node for node in nodes}
        edges = list(definition["edges"])
        present = {(e["from"], e["to"]) for e in edges}
        touched: list[str] = []
        for a, b, kind in self.edges:
            i, j = sorted((a % len(nodes), b % len(nodes)))
            source, target = nodes[i]["id"], nodes[j]["id"]
            if i == j or (source, target) in present:
                continue
            present.add((source, target))
            edges.append(edge(by_id[source], target, kind))
            if target in existing and target not in touched:
                touched.append(target)
        if self.kind == "cycle":
            # Any edge turned around closes a cycle; without one, a node's edge to itself does.
            back = edges[-1] if edges else {"from": nodes[-1]["id"], "to": nodes[-1]["id"]}
            edges.append({"from": back["to"], "to": back["from"]})
        elif self.kind == "unknown_node":
            edges.append({"from": nodes[-1]["id"], "to": "ghost"})
        return {**definition, "nodes": nodes, "edges": edges}, touched


@st.composite
def patch_plans(draw: st.DrawFn) -> PatchPlan:
    kind = draw(st.sampled_from(["valid", "valid", "valid", "valid", "cycle", "unknown_node"]))
    new_nodes = tuple(
        {k: v for k, v in draw(node_specs("new")).items() if k != "id"} for _ in range(draw(st.integers(1, 2)))
    )
    picks = st.tuples(st.integers(0, 11), st.integers(0, 11), edge_kinds)
    return PatchPlan(kind, new_nodes, tuple(draw(st.lists(picks, max_size=4))))


@dataclass(frozen=True)
class Outcome:
    """What a run of a definition ends with: its status and, when it succeeded, every node's final status."""

    status: str
    nodes: dict[str, str] | None


def scripted_succeeds(config: dict[str, Any], retry: dict[str, Any] | None) -> bool:
    attempts = (retry or {}).get("max_attempts", 1) if config.get("retryable", True) else 1
    return int(config.get("fail_attempts", 0)) < attempts


def expected_outcome(definition: dict[str, Any]) -> Outcome:
    """The end of an undisturbed run (no cancel, no resume) of ``definition``, by the engine's documented rules:
    a node runs once one incoming edge is live (``join: any``) or all are resolved and one is live (``all``), else
    it is skipped; a failed node without a ``when: failed`` edge fails the run; an unknown type is skipped with its
    outgoing edges live."""
    nodes = {node["id"]: node for node in definition["nodes"]}
    incoming: dict[str, list[dict[str, Any]]] = {node_id: [] for node_id in nodes}
    graph: nx.DiGraph[str] = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for e in definition["edges"]:
        incoming[e["to"]].append(e)
        graph.add_edge(e["from"], e["to"])
    status: dict[str, str] = {}
    unknown: set[str] = set()
    for node_id in nx.lexicographical_topological_sort(graph):
        node = nodes[node_id]
        if incoming[node_id] and not any(_live(e, nodes, status, unknown) for e in incoming[node_id]):
            status[node_id] = "skipped"
        elif node["type"] == UNKNOWN_TYPE:
            status[node_id] = "skipped"
            unknown.add(node_id)
        elif node["type"] == "scripted" and not scripted_succeeds(node["config"], node.get("retry")):
            status[node_id] = "failed"
            if not any(e["from"] == node_id and e.get("when") == "failed" for e in definition["edges"]):
                return Outcome("failed", None)
        else:
            status[node_id] = "succeeded"
    return Outcome("succeeded", status)


def _live(e: dict[str, Any], nodes: dict[str, Any], status: dict[str, str], unknown: set[str]) -> bool:
    source = e["from"]
    on_failure = e.get("when") == "failed"
    if status[source] == "failed":
        return on_failure
    if status[source] == "skipped":
        return source in unknown and not on_failure
    if on_failure:
        return False
    return e.get("when") != CONDITION or nodes[source]["config"]["output"] > 1
