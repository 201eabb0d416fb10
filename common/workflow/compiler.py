"""Compiles a workflow definition into the IR, reporting every problem found at once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import networkx as nx
from pydantic import BaseModel, ValidationError

from common.errors import ValidationFailed
from common.workflow.definition import (
    EdgeSpec,
    NodeSpec,
    WorkflowDefinition,
    definition_hash,
    error_lines,
    json_schema,
)
from common.workflow.ir import IR, IrEdge, IrNode, RetryPolicy
from common.workflow.limits import DefinitionLimits, check_size
from common.workflow.node_configs import HITL_BRANCHES
from common.workflow.node_types import NODE_TYPES
from common.workflow.templates import check_condition_syntax, check_syntax, referenced_nodes

__all__ = ["CompileResult", "compile_definition", "definition_hash", "json_schema"]

_MAX_LISTED_IDS = 20
# Node types whose ``body`` may be an inline definition.
INLINE_BODY_TYPES = frozenset({"loop", "map"})


@dataclass(frozen=True)
class CompileResult:
    """The IR, the normalised definition it came from, and warnings for the user."""

    ir: IR
    definition: WorkflowDefinition
    warnings: list[str]


def compile_definition(
    definition: dict[str, Any] | WorkflowDefinition,
    *,
    max_agents: int = 5,
    version: int = 1,
    name: str | None = None,
    limits: DefinitionLimits | None = None,
) -> CompileResult:
    """Validate and compile ``definition``; ``name`` overrides the definition's own name in the IR.

    Raises ``DefinitionTooLarge`` when it goes over ``limits`` (None: not checked, for definitions already
    stored), else ``ValidationFailed`` listing every error found. Takes time linear in nodes, edges and size.
    """
    if limits is not None:
        check_size(definition.to_json() if isinstance(definition, WorkflowDefinition) else definition, limits)
    compiler = _Compiler(limits)
    parsed = compiler.parse(definition)
    configs = compiler.check_nodes()
    compiler.check_edges()
    compiler.check_graph(complete=parsed is not None)
    compiler.check_templates()
    agent_count = sum(1 for _, node in compiler.nodes if node.type == "agent")
    if agent_count > max_agents:
        compiler.errors.append(f"too many agent nodes: {agent_count} (limit {max_agents})")
    if compiler.errors or parsed is None:
        raise ValidationFailed(compiler.errors)

    ir = IR(
        version=version,
        name=name or parsed.name or "",
        nodes={node.id: _ir_node(node, configs.get(node.id)) for node in parsed.nodes},
        successors=_successors(parsed),
        indegree=_indegree(parsed),
        entries=compiler.entries,
        agent_count=agent_count,
        outputs=parsed.outputs,
        inputs_schema=parsed.inputs,
        warnings=compiler.warnings,
    )
    return CompileResult(ir=ir, definition=parsed, warnings=compiler.warnings)


class _Compiler:
    """Collects errors and warnings while checking one definition."""

    def __init__(self, limits: DefinitionLimits | None) -> None:
        self.limits = limits
        self.errors: list[str] = []
        self.warnings: list[str] = []
        # (index in the definition, spec) of every node/edge that parsed, so paths stay true.
        self.nodes: list[tuple[int, NodeSpec]] = []
        self.edges: list[tuple[int, EdgeSpec]] = []
        # Ids of nodes that exist but failed to parse: edges to them are not reported as unknown.
        self.broken_ids: set[str] = set()
        self.first_index: dict[str, int] = {}
        self.entries: list[str] = []
        self.outputs: dict[str, Any] | None = None
        self.graph: nx.DiGraph[str] = nx.DiGraph()

    def parse(self, definition: dict[str, Any] | WorkflowDefinition) -> WorkflowDefinition | None:
        if isinstance(definition, WorkflowDefinition):
            parsed = definition
        else:
            try:
                parsed = WorkflowDefinition.model_validate(definition)
            except ValidationError as exc:
                self.errors += error_lines(exc)
                self._salvage(definition)
                return None
        self.nodes = list(enumerate(parsed.nodes))
        self.edges = list(enumerate(parsed.edges))
        self.outputs = parsed.outputs
        return parsed

    def _salvage(self, raw: Any) -> None:
        """Parse nodes and edges one by one so a structural error elsewhere hides no other error."""
        if not isinstance(raw, dict):
            return
        for index, item in enumerate(_list_at(raw, "nodes")):
            try:
                self.nodes.append((index, NodeSpec.model_validate(item)))
            except ValidationError:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    self.broken_ids.add(item["id"])
        for index, item in enumerate(_list_at(raw, "edges")):
            try:
                self.edges.append((index, EdgeSpec.model_validate(item)))
            except ValidationError:
                continue
        outputs = raw.get("outputs")
        self.outputs = outputs if isinstance(outputs, dict) else None

    def check_nodes(self) -> dict[str, dict[str, Any]]:
        """Check ids and per-type configs; return each known node's validated config."""
        configs: dict[str, dict[str, Any]] = {}
        for index, node in self.nodes:
            first = self.first_index.setdefault(node.id, index)
            if first != index:
                self.errors.append(f"nodes[{index}].id: duplicate id '{node.id}' (first at nodes[{first}])")
            model = NODE_TYPES.get(node.type)
            if model is None:
                self.warnings.append(
                    f"nodes[{index}].type: unknown type '{node.type}'; the node will be skipped at run time"
                )
                continue
            if node.ignored_config:
                names = ", ".join(f"'{name}'" for name in node.ignored_config)
                self.warnings.append(
                    f"nodes[{index}].config: {names} ignored: the original platform's '{node.written_type}' node"
                    f" carried them without using them; it runs as '{node.type}'"
                )
            body = node.config.get("body") if node.type in INLINE_BODY_TYPES else None
            if isinstance(body, dict):
                # An inline body is a workflow of its own and must compile on its own.
                try:
                    compile_definition(body, limits=self.limits)
                except ValidationFailed as exc:
                    self.errors.append(f"nodes[{index}].config.body: inline definition: {'; '.join(exc.errors)}")
            try:
                configs[node.id] = _dump_config(model.model_validate(node.config))
            except ValidationError as exc:
                self.errors += error_lines(exc, at=f"nodes[{index}].config")
        return configs

    def check_edges(self) -> None:
        types = {node.id: node.type for _, node in self.nodes}
        known = list(self.first_index)
        first_edge: dict[tuple[str, str], int] = {}
        for index, edge in self.edges:
            for field, end in (("from", edge.source), ("to", edge.to)):
                if end not in types and end not in self.broken_ids:
                    self.errors.append(f"edges[{index}].{field}: unknown node '{end}' (known: {_listing(known)})")
            first = first_edge.setdefault((edge.source, edge.to), index)
            if first != index:
                self.errors.append(
                    f"edges[{index}]: duplicate edge '{edge.source}' -> '{edge.to}' (first at edges[{first}])"
                )
            if edge.branch is not None and types.get(edge.source) == "hitl" and edge.branch not in HITL_BRANCHES:
                self.errors.append(
                    f"edges[{index}].branch: hitl node '{edge.source}' decides 'approved' or 'rejected'"
                    f" (got '{edge.branch}')"
                )
        guarded = {edge.source for _, edge in self.edges if edge.when}
        for index, node in self.nodes:
            if node.type == "branch" and node.id not in guarded:
                self.warnings.append(
                    f"nodes[{index}]: branch node '{node.id}' has no 'when' on its outgoing edges;"
                    " every path stays live"
                )

    def check_graph(self, *, complete: bool) -> None:
        """Report cycles; when the whole definition parsed, also a missing entry node."""
        graph = self.graph
        graph.add_nodes_from(node.id for _, node in self.nodes)
        graph.add_edges_from((e.source, e.to) for _, e in self.edges if e.source in graph and e.to in graph)
        order = {node_id: position for position, node_id in enumerate(self.first_index)}
        cyclic = [
            sorted(component, key=order.__getitem__)
            for component in nx.strongly_connected_components(graph)
            if len(component) > 1 or any(graph.has_edge(node_id, node_id) for node_id in component)
        ]
        for component in sorted(cyclic, key=lambda members: order[members[0]]):
            cycle = nx.find_cycle(graph.subgraph(component), source=component[0])
            path = [cycle[0][0], *(target for _, target in cycle)]
            self.errors.append("cycle: " + " -> ".join(path))
        self.entries = [node_id for node_id in self.first_index if graph.in_degree(node_id) == 0]
        if complete and self.nodes and not self.entries:
            self.errors.append("no entry node: every node has an incoming edge")

    def check_templates(self) -> None:
        """Report template syntax errors; warn about templates that name unknown or non-upstream nodes."""
        runs_before = _RunsBefore(self.graph)
        for index, node in self.nodes:
            if node.type not in NODE_TYPES:
                continue
            at = f"nodes[{index}].config"
            self.errors += [_located(at, error) for error in check_syntax(node.config)]
            # An inline body is a workflow of its own: its `nodes.x` refer to its own nodes, checked when it compiles.
            own_scope = {k: v for k, v in node.config.items() if not (k == "body" and isinstance(v, dict))}
            for ref in sorted(referenced_nodes(own_scope)):
                if ref not in self.graph and ref not in self.broken_ids:
                    self.warnings.append(f"{at}: refers to unknown node '{ref}'")
                elif ref in self.graph and node.id in self.graph and not runs_before(ref, node.id):
                    self.warnings.append(f"{at}: refers to node '{ref}', which does not run before '{node.id}'")
        for index, edge in self.edges:
            if edge.when is not None and not edge.on_failure:
                error = check_condition_syntax(edge.when)
                if error is not None:
                    self.errors.append(f"edges[{index}].when: {error}")
        if self.outputs:
            self.errors += [_located("outputs", error) for error in check_syntax(self.outputs)]
            for ref in sorted(referenced_nodes(self.outputs) - set(self.graph) - self.broken_ids):
                self.warnings.append(f"outputs: refers to unknown node '{ref}'")


class _RunsBefore:
    """Whether a path leads from one node to another, for every pair asked, from one pass over the graph.

    Asking ``nx.has_path`` once per template reference walked the graph each time (quadratic: 4,000 nodes took
    over a minute). Here each strongly connected component gets the set of components it is reached from, as an
    integer bitset built in one topological pass over the condensation: one union per edge, each a few machine
    words per 64 nodes, and a lookup per reference.
    """

    def __init__(self, graph: nx.DiGraph[str]) -> None:
        condensed = nx.condensation(graph)
        self._component: dict[str, int] = condensed.graph["mapping"]
        self._ancestors: dict[int, int] = {}
        for component in nx.topological_sort(condensed):
            reached_from = 1 << component
            for predecessor in condensed.predecessors(component):
                reached_from |= self._ancestors[predecessor]
            self._ancestors[component] = reached_from

    def __call__(self, source: str, target: str) -> bool:
        """True when ``target`` is reachable from ``source`` (a node reaches itself)."""
        return bool(self._ancestors[self._component[target]] >> self._component[source] & 1)


def _located(at: str, error: str) -> str:
    """Prefix a path-relative error (``url: …``, ``[0]: …``) with where its value sits."""
    return f"{at}{'' if error.startswith('[') else '.'}{error}"


def _list_at(raw: dict[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    return value if isinstance(value, list) else []


def _dump_config(config: BaseModel) -> dict[str, Any]:
    """Validated config as JSON, leaving out optional fields that are unset (None)."""
    dumped = config.model_dump(mode="json", by_alias=True)
    fields = type(config).model_fields
    optional = {field.alias or name for name, field in fields.items() if not field.is_required()}
    return {key: value for key, value in dumped.items() if value is not None or key not in optional}


def _ir_node(node: NodeSpec, config: dict[str, Any] | None) -> IrNode:
    return IrNode(
        id=node.id,
        type=node.type,
        name=node.name,
        config=node.config if config is None else config,
        retry=node.retry.policy() if node.retry else RetryPolicy(),
        timeout_s=node.timeout_s,
        join=node.join,
        known=node.type in NODE_TYPES,
    )


def _successors(definition: WorkflowDefinition) -> dict[str, list[IrEdge]]:
    successors: dict[str, list[IrEdge]] = {node.id: [] for node in definition.nodes}
    for edge in definition.edges:
        successors[edge.source].append(
            IrEdge(
                to=edge.to,
                when=None if edge.on_failure else edge.when,
                branch=edge.branch,
                on_failure=edge.on_failure,
            )
        )
    return successors


def _indegree(definition: WorkflowDefinition) -> dict[str, int]:
    counts = Counter(edge.to for edge in definition.edges)
    return {node.id: counts[node.id] for node in definition.nodes}


def _listing(ids: list[str]) -> str:
    shown = ", ".join(ids[:_MAX_LISTED_IDS])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > _MAX_LISTED_IDS else "")
