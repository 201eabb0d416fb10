import { describe, expect, it } from "vitest";
import { definitionToCanvas, type FlowEdge, type FlowNode } from "./graph";
import { copySelection, parseClip, pasteClip, renameReferences, serializeClip, type Clip } from "./clipboard";

const canvas = definitionToCanvas({
  nodes: [
    { id: "prepare", type: "transform", config: { output: { greeting: "Hi" } }, metadata: { ui: { x: 100, y: 50 } } },
    { id: "publish", type: "transform", config: { output: { text: "{{ nodes.prepare.output.greeting }}", other: "{{ nodes.prepared.x }}" } }, metadata: { ui: { x: 400, y: 80 } } },
    { id: "end", type: "noop", metadata: { ui: { x: 700, y: 80 } } },
  ],
  edges: [
    { from: "prepare", to: "publish", when: "output.ok" },
    { from: "publish", to: "end" },
  ],
});
const select = (nodes: FlowNode[], ids: string[]) => nodes.map((n) => ({ ...n, selected: ids.includes(n.id) }));

describe("copy", () => {
  it("takes the selected nodes with their positions and only the edges between them", () => {
    const clip = copySelection(select(canvas.nodes, ["prepare", "publish"]), canvas.edges) as Clip;
    expect(clip.nodes.map((n) => [n.id, n.metadata?.ui])).toEqual([["prepare", { x: 100, y: 50 }], ["publish", { x: 400, y: 80 }]]);
    expect(clip.edges).toEqual([{ from: "prepare", to: "publish", when: "output.ok" }]);
    expect(copySelection(canvas.nodes, canvas.edges)).toBeNull();
  });

  it("round-trips through the clipboard text", () => {
    const clip = copySelection(select(canvas.nodes, ["end"]), canvas.edges) as Clip;
    expect(parseClip(serializeClip(clip))).toEqual({ clip });
  });
});

describe("parse", () => {
  it("leaves plain text and JSON without nodes alone", () => {
    expect(parseClip("hello")).toBeNull();
    expect(parseClip('{"a": 1}')).toBeNull();
    expect(parseClip("[1, 2]")).toBeNull();
  });

  it("says what is wrong with broken nodes", () => {
    expect(parseClip('{"nodes": [{"id": "a"}]}')).toEqual({ error: "pasted nodes[0].type: expected a non-empty string" });
    expect(parseClip('{"nodes": [3]}')).toEqual({ error: "pasted nodes[0]: expected an object, got 3" });
    expect(parseClip('{"nodes": []}')).toEqual({ error: "pasted nodes: the list is empty" });
  });

  it("takes a definition or an export, dropping edges to nodes outside it", () => {
    const text = JSON.stringify({ name: "x", definition: { nodes: [{ id: "a", type: "noop" }], edges: [{ from: "a", to: "zz" }, "junk"] } });
    expect(parseClip(text)).toEqual({ clip: { format: "aob.nodes/v1", nodes: [{ id: "a", type: "noop" }], edges: [] } });
  });
});

describe("paste", () => {
  const clip = copySelection(select(canvas.nodes, ["prepare", "publish"]), canvas.edges) as Clip;

  it("into the same workflow: fresh ids, templates and edges follow, offset, selected", () => {
    const { nodes, edges } = pasteClip(clip, canvas.nodes, canvas.edges);
    expect(nodes.map((n) => n.id)).toEqual(["prepare_2", "publish_2"]);
    expect(nodes.map((n) => n.position)).toEqual([{ x: 140, y: 90 }, { x: 440, y: 120 }]);
    expect(nodes.every((n) => n.selected)).toBe(true);
    expect((nodes[1].data.spec.config as { output: Record<string, string> }).output).toEqual({
      text: "{{ nodes.prepare_2.output.greeting }}",
      other: "{{ nodes.prepared.x }}",
    });
    expect(edges.map((e) => [e.source, e.target, e.data?.when])).toEqual([["prepare_2", "publish_2", "output.ok"]]);
    expect(canvas.edges.some((e) => e.id === edges[0].id)).toBe(false);
  });

  it("into another workflow: ids kept where free, the group placed at a point", () => {
    const other: FlowNode[] = [{ id: "publish", type: "aob", position: { x: 0, y: 0 }, data: { spec: { id: "publish", type: "noop" } } }];
    const { nodes } = pasteClip(clip, other, [] as FlowEdge[], { at: { x: 1000, y: 500 } });
    expect(nodes.map((n) => [n.id, n.position])).toEqual([["prepare", { x: 1000, y: 500 }], ["publish_2", { x: 1300, y: 530 }]]);
  });

  it("lays out pasted nodes that have no positions", () => {
    const parsed = parseClip('{"nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}], "edges": [{"from": "a", "to": "b"}]}');
    const { nodes } = pasteClip((parsed as { clip: Clip }).clip, [], [], { at: { x: 0, y: 0 } });
    expect(nodes[0].position.x).toBeLessThan(nodes[1].position.x);
  });

  it("renames only whole node ids in references", () => {
    const renames = new Map([["a", "a_2"]]);
    expect(renameReferences({ x: ["{{ nodes.a.output }} {{ nodes.ab.output }} {{ nodes.a-b }}"] }, renames)).toEqual({
      x: ["{{ nodes.a_2.output }} {{ nodes.ab.output }} {{ nodes.a-b }}"],
    });
  });
});
