// What of the builder's canvas is the document (nodes, their positions and specs, edges) as opposed to view state
// (selection, dragging, measured sizes): the document is what undo/redo steps through.
import type { FlowEdge, FlowNode } from "./graph";

export type CanvasDocument = { nodes: FlowNode[]; edges: FlowEdge[] };

/** The document of the canvas: nodes and edges without their selection. Specs and positions are shared, not copied. */
export function documentOf(nodes: FlowNode[], edges: FlowEdge[]): CanvasDocument {
  return {
    nodes: nodes.map(({ selected: _selected, dragging: _dragging, ...node }) => node),
    edges: edges.map(({ selected: _selected, ...edge }) => edge),
  };
}

function samePosition(a: FlowNode, b: FlowNode): boolean {
  return a.position.x === b.position.x && a.position.y === b.position.y;
}

/** Whether two ``data`` objects hold the same content: the same object, or an equal copy. A form that writes back
 * what a field already holds makes a copy, which is not an edit and must not become an undo step. */
function sameData(a: unknown, b: unknown): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Whether the canvas ``nodes``/``edges`` show ``document`` (selection and sizes aside). Edits replace a node's
 * ``data`` or ``position``, so only the objects an edit replaced are compared by content; the rest by reference. */
export function showsDocument(document: CanvasDocument, nodes: FlowNode[], edges: FlowEdge[]): boolean {
  if (document.nodes.length !== nodes.length || document.edges.length !== edges.length) return false;
  for (let i = 0; i < nodes.length; i++) {
    const [a, b] = [document.nodes[i], nodes[i]];
    if (a.id !== b.id || !samePosition(a, b) || !sameData(a.data, b.data)) return false;
  }
  for (let i = 0; i < edges.length; i++) {
    const [a, b] = [document.edges[i], edges[i]];
    if (a.id !== b.id || a.source !== b.source || a.target !== b.target || !sameData(a.data, b.data)) return false;
  }
  return true;
}

/** A key naming the edit from ``before`` to ``after`` when it is one that merges with the next of its kind:
 * ``config:<id>`` (one node's spec edited), ``move:<ids>`` (only positions changed), ``edge:<id>``; else null. */
export function editKey(before: CanvasDocument, after: CanvasDocument): string | null {
  if (before.nodes.length !== after.nodes.length || before.edges.length !== after.edges.length) return null;
  const specChanged: string[] = [];
  const moved: string[] = [];
  for (let i = 0; i < after.nodes.length; i++) {
    const [a, b] = [before.nodes[i], after.nodes[i]];
    if (a.id !== b.id) return null;
    if (a.data !== b.data) specChanged.push(b.id);
    if (!samePosition(a, b)) moved.push(b.id);
  }
  const edgeChanged: string[] = [];
  for (let i = 0; i < after.edges.length; i++) {
    const [a, b] = [before.edges[i], after.edges[i]];
    if (a.id !== b.id || a.source !== b.source || a.target !== b.target) return null;
    if (a.data !== b.data) edgeChanged.push(b.id);
  }
  if (specChanged.length === 1 && !moved.length && !edgeChanged.length) return `config:${specChanged[0]}`;
  if (moved.length && !specChanged.length && !edgeChanged.length) return `move:${moved.join(",")}`;
  if (edgeChanged.length === 1 && !specChanged.length && !moved.length) return `edge:${edgeChanged[0]}`;
  return null;
}

/** The canvas showing ``document`` again, with the nodes and edges of ``selected`` ids still selected. */
export function restore(document: CanvasDocument, selected: Set<string>): CanvasDocument {
  return {
    nodes: document.nodes.map((n) => (selected.has(n.id) ? { ...n, selected: true } : n)),
    edges: document.edges.map((e) => (selected.has(e.id) ? { ...e, selected: true } : e)),
  };
}
