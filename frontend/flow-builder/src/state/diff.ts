// Compare two definitions: which nodes and edges were added, removed or changed, and which fields changed.
import type { Definition, EdgeSpec, NodeSpec } from "../api/types";

export type Change = "added" | "removed" | "changed" | "same";
export type NodeDiff = { id: string; change: Change; fields: string[]; spec: NodeSpec };
export type EdgeDiff = { key: string; change: Change; edge: EdgeSpec };
export type DefinitionDiff = { nodes: NodeDiff[]; edges: EdgeDiff[] };

export function edgeKey(edge: EdgeSpec): string {
  return `${edge.from}->${edge.to}`;
}

/** What changed from ``before`` to ``after``; canvas positions (``metadata.ui``) do not count as changes. */
export function diffDefinitions(before: Definition, after: Definition): DefinitionDiff {
  const old = new Map(before.nodes.map((n) => [n.id, n]));
  const now = new Map(after.nodes.map((n) => [n.id, n]));
  const nodes: NodeDiff[] = [];
  for (const spec of after.nodes) {
    const prior = old.get(spec.id);
    if (!prior) nodes.push({ id: spec.id, change: "added", fields: [], spec });
    else {
      const fields = changedFields(comparable(prior), comparable(spec));
      nodes.push({ id: spec.id, change: fields.length ? "changed" : "same", fields, spec });
    }
  }
  for (const spec of before.nodes) {
    if (!now.has(spec.id)) nodes.push({ id: spec.id, change: "removed", fields: [], spec });
  }
  const oldEdges = new Map(before.edges.map((e) => [edgeKey(e), e]));
  const newEdges = new Map(after.edges.map((e) => [edgeKey(e), e]));
  const edges: EdgeDiff[] = [];
  for (const [key, edge] of newEdges) {
    const prior = oldEdges.get(key);
    const change = !prior ? "added" : prior.when !== edge.when || prior.branch !== edge.branch ? "changed" : "same";
    edges.push({ key, change, edge });
  }
  for (const [key, edge] of oldEdges) if (!newEdges.has(key)) edges.push({ key, change: "removed", edge });
  return { nodes, edges };
}

function comparable(spec: NodeSpec): Record<string, unknown> {
  const { metadata, ...rest } = spec;
  if (!metadata) return rest;
  const { ui: _ui, ...meta } = metadata;
  return Object.keys(meta).length ? { ...rest, metadata: meta } : rest;
}

/** Dotted paths (``config.url``, ``retry``) whose values differ between ``a`` and ``b``. */
export function changedFields(a: unknown, b: unknown, at = ""): string[] {
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((key) => changedFields(a[key], b[key], at ? `${at}.${key}` : key));
  }
  return stableJson(a) === stableJson(b) ? [] : [at || "(value)"];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === "object" && !Array.isArray(value);
}

export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) =>
    isPlainObject(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
  ) ?? "undefined";
}
