// Copy and paste of nodes: the selection travels as a definition fragment (nodes with their positions in
// ``metadata.ui``, and the edges between them), so it pastes into any workflow, in this tab or another, and a
// definition or export pasted from elsewhere pastes too. Pasted ids that are taken get a suffix, and templates of
// the pasted nodes follow the renames (``nodes.prepare.output`` → ``nodes.prepare_2.output``).
import type { Definition, EdgeSpec, NodeSpec } from "../api/types";
import { canvasToDefinition, definitionToCanvas, freshNodeId, type FlowEdge, type FlowNode } from "./graph";

export const CLIP_FORMAT = "aob.nodes/v1";

export type Clip = { format: typeof CLIP_FORMAT; nodes: NodeSpec[]; edges: EdgeSpec[] };

/** The selected nodes and the edges between them; null when no node is selected. */
export function copySelection(nodes: FlowNode[], edges: FlowEdge[]): Clip | null {
  const chosen = nodes.filter((n) => n.selected);
  if (!chosen.length) return null;
  const ids = new Set(chosen.map((n) => n.id));
  const inside = edges.filter((e) => ids.has(e.source) && ids.has(e.target));
  const fragment = canvasToDefinition({}, chosen, inside);
  return { format: CLIP_FORMAT, nodes: fragment.nodes, edges: fragment.edges };
}

export function serializeClip(clip: Clip): string {
  return JSON.stringify(clip);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The clip in ``text``: this format, a definition, or an export (``{name, definition}``). Null when the text is
 * not meant as nodes at all (so a paste of plain text is left alone); ``error`` when it is, but broken. */
export function parseClip(text: string): { clip: Clip } | { error: string } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  if (isRecord(parsed) && isRecord(parsed.definition)) parsed = parsed.definition;
  if (!isRecord(parsed) || !Array.isArray(parsed.nodes)) return null;
  const nodes: NodeSpec[] = [];
  for (const [i, node] of parsed.nodes.entries()) {
    if (!isRecord(node)) return { error: `pasted nodes[${i}]: expected an object, got ${JSON.stringify(node)}` };
    for (const field of ["id", "type"]) {
      if (typeof node[field] !== "string" || !node[field]) return { error: `pasted nodes[${i}].${field}: expected a non-empty string` };
    }
    nodes.push(node as NodeSpec);
  }
  if (!nodes.length) return { error: "pasted nodes: the list is empty" };
  const ids = new Set(nodes.map((n) => n.id));
  const rawEdges: unknown[] = Array.isArray(parsed.edges) ? parsed.edges : [];
  // Edges to nodes outside the pasted set have nothing to attach to here.
  const edges = rawEdges.filter(
    (e): e is EdgeSpec => isRecord(e) && typeof e.from === "string" && typeof e.to === "string" && ids.has(e.from) && ids.has(e.to),
  );
  return { clip: { format: CLIP_FORMAT, nodes, edges } };
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** ``value`` with every ``nodes.<old>`` reference in its strings renamed by ``renames``. */
export function renameReferences(value: unknown, renames: Map<string, string>): unknown {
  if (!renames.size) return value;
  if (typeof value === "string") {
    let out = value;
    for (const [from, to] of renames) out = out.replace(new RegExp(`\\bnodes\\.${escapeRegExp(from)}(?![A-Za-z0-9_-])`, "g"), `nodes.${to}`);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => renameReferences(v, renames));
  if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renameReferences(v, renames)]));
  return value;
}

export type PasteOptions = {
  /** Where the pasted group's top-left corner goes; without it the group keeps its positions moved by ``offset``. */
  at?: { x: number; y: number };
  offset?: number;
};

/** The nodes and edges ``clip`` adds to a canvas that has ``existing`` nodes and ``existingEdges``: fresh ids
 * where taken, selected, placed at ``at`` (or ``offset`` from where they were copied). */
export function pasteClip(
  clip: Clip,
  existing: FlowNode[],
  existingEdges: FlowEdge[],
  { at, offset = 40 }: PasteOptions = {},
): { nodes: FlowNode[]; edges: FlowEdge[] } {
  const taken = new Set(existing.map((n) => n.id));
  const renames = new Map<string, string>();
  for (const spec of clip.nodes) {
    const id = freshNodeId(spec.id, taken);
    taken.add(id);
    if (id !== spec.id) renames.set(spec.id, id);
  }
  const rename = (id: string) => renames.get(id) ?? id;
  const fragment: Definition = {
    nodes: clip.nodes.map((spec) => ({ ...spec, id: rename(spec.id), config: renameReferences(spec.config, renames) as NodeSpec["config"] })),
    edges: clip.edges.map((edge) => ({ ...edge, from: rename(edge.from), to: rename(edge.to) })),
  };
  const canvas = definitionToCanvas(fragment);
  const left = Math.min(...canvas.nodes.map((n) => n.position.x));
  const top = Math.min(...canvas.nodes.map((n) => n.position.y));
  const [dx, dy] = at ? [at.x - left, at.y - top] : [offset, offset];
  const edgeIds = new Set(existingEdges.map((e) => e.id));
  return {
    nodes: canvas.nodes.map((n) => ({ ...n, selected: true, position: { x: n.position.x + dx, y: n.position.y + dy } })),
    edges: canvas.edges.map((e) => {
      let id = `${e.id}:pasted`;
      for (let i = 2; edgeIds.has(id); i++) id = `${e.id}:pasted${i}`;
      edgeIds.add(id);
      return { ...e, id };
    }),
  };
}
