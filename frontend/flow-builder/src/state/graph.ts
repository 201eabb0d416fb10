// Definition ⇄ canvas: a node's canvas position lives in its ``metadata.ui``, so a saved version keeps its layout;
// definitions without positions (imported, written by hand or patched by agents) are laid out with dagre.
import dagre from "@dagrejs/dagre";
import type { Edge, Node } from "@xyflow/react";
import type { Definition, EdgeSpec, NodeSpec } from "../api/types";

export type FlowNodeData = { spec: NodeSpec; [key: string]: unknown };
export type FlowEdgeData = { when?: string; branch?: string; [key: string]: unknown };
export type FlowNode = Node<FlowNodeData, "aob">;
export type FlowEdge = Edge<FlowEdgeData>;

/** Everything of a definition that is not its graph: kept aside while the canvas holds the graph. */
export type DefinitionMeta = Omit<Definition, "nodes" | "edges">;

export const NODE_WIDTH = 190;
export const NODE_HEIGHT = 64;

export function edgeId(edge: EdgeSpec, index: number): string {
  return `e${index}:${edge.from}->${edge.to}`;
}

export function edgeLabel(edge: { when?: string; branch?: string }): string | undefined {
  if (edge.branch) return edge.branch;
  if (edge.when) return edge.when === "failed" ? "on failure" : `when ${edge.when}`;
  return undefined;
}

function storedPosition(spec: NodeSpec): { x: number; y: number } | undefined {
  const ui = spec.metadata?.ui as { x?: unknown; y?: unknown } | undefined;
  if (ui && typeof ui.x === "number" && typeof ui.y === "number") return { x: ui.x, y: ui.y };
  return undefined;
}

/** Canvas nodes and edges for ``definition``; laid out when any node has no stored position. */
export function definitionToCanvas(definition: Definition): { nodes: FlowNode[]; edges: FlowEdge[]; meta: DefinitionMeta } {
  const { nodes: specs, edges: edgeSpecs, ...meta } = definition;
  const edges: FlowEdge[] = (edgeSpecs ?? []).map((edge, index) => ({
    id: edgeId(edge, index),
    source: edge.from,
    target: edge.to,
    label: edgeLabel(edge),
    data: { when: edge.when, branch: edge.branch },
  }));
  let nodes: FlowNode[] = (specs ?? []).map((spec) => ({
    id: spec.id,
    type: "aob",
    position: storedPosition(spec) ?? { x: 0, y: 0 },
    data: { spec: withoutPosition(spec) },
  }));
  const missing = new Set((specs ?? []).filter((spec) => !storedPosition(spec)).map((spec) => spec.id));
  if (missing.size === nodes.length) nodes = layout(nodes, edges);
  else if (missing.size) nodes = placeMissing(nodes, edges, missing);
  return { nodes, edges, meta };
}

/** Nodes without a position (added by a patch) go right of their sources, one below the other. */
function placeMissing(nodes: FlowNode[], edges: FlowEdge[], missing: Set<string>): FlowNode[] {
  const placed = new Map(nodes.filter((n) => !missing.has(n.id)).map((n) => [n.id, n.position]));
  const stacked = new Map<string, number>();
  let pending = nodes.filter((n) => missing.has(n.id));
  while (pending.length) {
    const before = pending.length;
    pending = pending.filter((node) => {
      const sources = edges.filter((e) => e.target === node.id).map((e) => placed.get(e.source));
      if (sources.length && sources.every((p) => !p)) return true;
      const known = sources.filter((p): p is { x: number; y: number } => !!p);
      const x = known.length ? Math.max(...known.map((p) => p.x)) + NODE_WIDTH + 70 : 0;
      const y = known.length ? known[0].y : Math.max(0, ...[...placed.values()].map((p) => p.y)) + NODE_HEIGHT + 40;
      const slot = `${x}`;
      const offset = stacked.get(slot) ?? 0;
      stacked.set(slot, offset + 1);
      placed.set(node.id, { x, y: y + offset * (NODE_HEIGHT + 30) });
      return false;
    });
    if (pending.length === before) {
      for (const node of pending) placed.set(node.id, { x: 0, y: 0 });
      break;
    }
  }
  return nodes.map((n) => (missing.has(n.id) ? { ...n, position: placed.get(n.id) ?? n.position } : n));
}

function withoutPosition(spec: NodeSpec): NodeSpec {
  if (!spec.metadata || !("ui" in spec.metadata)) return spec;
  const { ui: _ui, ...rest } = spec.metadata;
  const { metadata: _metadata, ...bare } = spec;
  return Object.keys(rest).length ? { ...bare, metadata: rest } : bare;
}

/** The definition the canvas shows; positions are rounded into ``metadata.ui`` unless ``positions`` is false. */
export function canvasToDefinition(
  meta: DefinitionMeta,
  nodes: FlowNode[],
  edges: FlowEdge[],
  { positions = true }: { positions?: boolean } = {},
): Definition {
  return {
    ...meta,
    nodes: nodes.map((node) => {
      const spec: NodeSpec = { ...node.data.spec, id: node.id };
      if (positions) {
        spec.metadata = { ...(spec.metadata ?? {}), ui: { x: Math.round(node.position.x), y: Math.round(node.position.y) } };
      }
      return spec;
    }),
    edges: edges.map((edge) => {
      const spec: EdgeSpec = { from: edge.source, to: edge.target };
      if (edge.data?.when) spec.when = edge.data.when;
      if (edge.data?.branch) spec.branch = edge.data.branch;
      return spec;
    }),
  };
}

/** ``nodes`` placed left to right by dagre. */
export function layout<N extends Node>(nodes: N[], edges: Edge[]): N[] {
  const graph = new dagre.graphlib.Graph();
  graph.setGraph({ rankdir: "LR", nodesep: 40, ranksep: 80 });
  graph.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) graph.setNode(node.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const edge of edges) {
    if (graph.hasNode(edge.source) && graph.hasNode(edge.target)) graph.setEdge(edge.source, edge.target);
  }
  dagre.layout(graph);
  return nodes.map((node) => {
    const placed = graph.node(node.id);
    return { ...node, position: { x: placed.x - NODE_WIDTH / 2, y: placed.y - NODE_HEIGHT / 2 } };
  });
}

/** A node id not used yet, from ``type`` (``http``, ``http_2``, ...). */
export function freshNodeId(type: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  const base = type.replace(/[^A-Za-z0-9_-]/g, "_").replace(/^[^A-Za-z_]/, "n_") || "node";
  if (!used.has(base)) return base;
  for (let i = 2; ; i++) if (!used.has(`${base}_${i}`)) return `${base}_${i}`;
}

/** Ids of the nodes that run before ``nodeId`` (for template hints). */
export function upstreamOf(nodeId: string, edges: { source: string; target: string }[]): string[] {
  const found = new Set<string>();
  const stack = [nodeId];
  while (stack.length) {
    const current = stack.pop() as string;
    for (const edge of edges) {
      if (edge.target === current && !found.has(edge.source)) {
        found.add(edge.source);
        stack.push(edge.source);
      }
    }
  }
  found.delete(nodeId);
  return [...found].sort();
}
