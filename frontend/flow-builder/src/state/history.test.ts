import { describe, expect, it } from "vitest";
import type { FlowEdge, FlowNode } from "./graph";
import { documentOf, editKey, restore, showsDocument } from "./canvasDocument";
import { canRedo, canUndo, record, redo, startHistory, undo } from "./history";

describe("history", () => {
  it("undoes and redoes steps in order; a new edit drops the redo future", () => {
    let h = startHistory("a");
    h = record(h, "b", { now: 0 });
    h = record(h, "c", { now: 5000 });
    expect([h.present, canUndo(h), canRedo(h)]).toEqual(["c", true, false]);
    h = undo(h);
    expect(h.present).toBe("b");
    h = undo(h);
    expect([h.present, canUndo(h), canRedo(h)]).toEqual(["a", false, true]);
    expect(undo(h)).toBe(h);
    h = redo(h);
    expect(h.present).toBe("b");
    h = record(h, "d", { now: 9000 });
    expect([h.present, canRedo(h), h.past]).toEqual(["d", false, ["a", "b"]]);
    expect(redo(h)).toBe(h);
  });

  it("merges edits under one key within the window, and not across an undo or another key", () => {
    let h = startHistory("");
    for (const [i, text] of ["H", "He", "Hel", "Hell", "Hello"].entries()) h = record(h, text, { key: "config:a", now: i * 300 });
    expect(h.past).toEqual([""]);
    h = record(h, "Hello!", { key: "config:a", now: 1200 + 1001 });
    expect(h.past).toEqual(["", "Hello"]);
    h = record(h, "Hello!!", { key: "config:b", now: 2300 });
    expect(h.past).toEqual(["", "Hello", "Hello!"]);
    h = undo(h);
    h = record(h, "Hello?", { key: "config:b", now: 2400 });
    expect(h.past).toEqual(["", "Hello", "Hello!"]);
    expect(undo(h).present).toBe("Hello!");
  });

  it("keeps at most limit steps and ignores recording the present again", () => {
    let h = startHistory(0);
    for (let i = 1; i <= 10; i++) h = record(h, i, { limit: 3, now: i * 5000 });
    expect(h.past).toEqual([7, 8, 9]);
    expect(record(h, h.present)).toBe(h);
  });
});

const node = (id: string, x = 0, spec: Record<string, unknown> = {}): FlowNode => ({
  id,
  type: "aob",
  position: { x, y: 0 },
  data: { spec: { id, type: "noop", ...spec } },
});
const edge = (source: string, target: string): FlowEdge => ({ id: `${source}->${target}`, source, target, data: {} });

describe("canvas document", () => {
  const nodes = [node("a"), node("b", 200)];
  const edges = [edge("a", "b")];
  const doc = documentOf(nodes, edges);

  it("is the canvas without selection; selecting or measuring changes nothing of it", () => {
    const selected = nodes.map((n) => ({ ...n, selected: true, measured: { width: 190, height: 64 } }));
    expect(showsDocument(doc, selected, edges.map((e) => ({ ...e, selected: true })))).toBe(true);
    expect(doc.nodes.every((n) => !("selected" in n))).toBe(true);
  });

  it("does not change when a form writes back what a node or edge already holds (a copy is not an edit)", () => {
    expect(showsDocument(doc, [nodes[0], { ...nodes[1], data: { ...nodes[1].data, spec: { ...nodes[1].data.spec } } }], edges)).toBe(true);
    expect(showsDocument(doc, nodes, [{ ...edges[0], data: edges[0].data ? { ...edges[0].data } : edges[0].data }])).toBe(true);
  });

  it("changes with a spec, a position, a node or an edge", () => {
    expect(showsDocument(doc, [nodes[0], { ...nodes[1], position: { x: 201, y: 0 } }], edges)).toBe(false);
    const renamed = { ...nodes[1].data, spec: { ...nodes[1].data.spec, name: "B" } };
    expect(showsDocument(doc, [nodes[0], { ...nodes[1], data: renamed }], edges)).toBe(false);
    expect(showsDocument(doc, [nodes[0]], edges)).toBe(false);
    expect(showsDocument(doc, nodes, [])).toBe(false);
    expect(showsDocument(doc, nodes, [{ ...edges[0], data: { branch: "x" } }])).toBe(false);
  });

  it("names the edits that merge: one node's config, moves, one edge's label", () => {
    const configured = documentOf([node("a", 0, { name: "x" }), nodes[1]], edges);
    expect(editKey(doc, configured)).toBe("config:a");
    const moved = documentOf([{ ...nodes[0], position: { x: 5, y: 5 } }, nodes[1]], edges);
    expect(editKey(doc, moved)).toBe("move:a");
    expect(editKey(doc, documentOf(nodes, [{ ...edges[0], data: { when: "ok" } }]))).toBe("edge:a->b");
    expect(editKey(doc, documentOf([nodes[0]], []))).toBeNull();
    expect(editKey(doc, documentOf([{ ...nodes[0], position: { x: 5, y: 5 } }, node("b", 200, { name: "y" })], edges))).toBeNull();
  });

  it("restores a document with the current selection kept by id", () => {
    const back = restore(doc, new Set(["b", "a->b"]));
    expect(back.nodes.map((n) => !!n.selected)).toEqual([false, true]);
    expect(back.edges[0].selected).toBe(true);
    expect(showsDocument(doc, back.nodes, back.edges)).toBe(true);
  });
});
