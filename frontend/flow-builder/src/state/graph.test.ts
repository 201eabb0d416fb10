import { describe, expect, it } from "vitest";
import type { Definition } from "../api/types";
import { canvasToDefinition, definitionToCanvas, edgeLabel, freshNodeId, upstreamOf } from "./graph";
import { applyPatch } from "./jsonPatch";
import { pinErrors } from "./validation";

const definition: Definition = {
  name: "approve",
  inputs: { type: "object", properties: { url: { type: "string" } } },
  nodes: [
    { id: "fetch", type: "http", config: { url: "{{ inputs.url }}" } },
    { id: "review", type: "hitl", config: { title: "Ok?" } },
    { id: "publish", type: "noop" },
    { id: "discard", type: "noop" },
  ],
  edges: [
    { from: "fetch", to: "review" },
    { from: "review", to: "publish", branch: "approved" },
    { from: "review", to: "discard", branch: "rejected" },
  ],
  outputs: { done: "{{ nodes.publish.output }}" },
};

describe("definition ⇄ canvas", () => {
  it("lays out a definition without positions left to right", () => {
    const { nodes, edges } = definitionToCanvas(definition);
    const x = Object.fromEntries(nodes.map((n) => [n.id, n.position.x]));
    expect(x.fetch).toBeLessThan(x.review);
    expect(x.review).toBeLessThan(x.publish);
    expect(edges.map((e) => e.label)).toEqual([undefined, "approved", "rejected"]);
  });

  it("round-trips: the graph is unchanged and positions go to metadata.ui", () => {
    const { nodes, edges, meta } = definitionToCanvas(definition);
    const back = canvasToDefinition(meta, nodes, edges);
    expect(canvasToDefinition(meta, nodes, edges, { positions: false })).toEqual(definition);
    expect(back.nodes[0].metadata?.ui).toEqual({ x: Math.round(nodes[0].position.x), y: Math.round(nodes[0].position.y) });
    const again = definitionToCanvas(back);
    expect(again.nodes.map((n) => n.position)).toEqual(nodes.map((n) => ({ x: Math.round(n.position.x), y: Math.round(n.position.y) })));
    expect(again.nodes[0].data.spec.metadata).toBeUndefined();
  });

  it("keeps other metadata and edge conditions", () => {
    const withMeta: Definition = {
      nodes: [{ id: "a", type: "branch", metadata: { owner: "x", ui: { x: 5, y: 6 } } }, { id: "b", type: "noop" }],
      edges: [{ from: "a", to: "b", when: "output.n > 1" }],
    };
    const { nodes, edges, meta } = definitionToCanvas(withMeta);
    expect(nodes[0].data.spec.metadata).toEqual({ owner: "x" });
    expect(edges[0].label).toBe("when output.n > 1");
    const back = canvasToDefinition(meta, nodes, edges);
    expect(back.edges).toEqual(withMeta.edges);
    expect(back.nodes[0].metadata).toEqual({ owner: "x", ui: expect.any(Object) });
  });

  it("names new nodes and finds upstream nodes", () => {
    expect(freshNodeId("http", ["http", "http_2"])).toBe("http_3");
    expect(freshNodeId("noop", [])).toBe("noop");
    const { edges } = definitionToCanvas(definition);
    expect(upstreamOf("publish", edges)).toEqual(["fetch", "review"]);
    expect(edgeLabel({ when: "failed" })).toBe("on failure");
  });
});

describe("pinErrors", () => {
  it("pins node and edge errors by index, the rest to the workflow", () => {
    const pinned = pinErrors(definition, [
      "nodes[1].config.title: required field missing",
      "edges[2].to: unknown node 'x' (known: a)",
      "cycle: a -> b -> a",
    ]);
    expect(pinned.nodes).toEqual({ review: ["nodes[1].config.title: required field missing"] });
    expect(Object.keys(pinned.edges)).toEqual(["2"]);
    expect(pinned.workflow).toEqual(["cycle: a -> b -> a"]);
  });
});

describe("applyPatch", () => {
  it("adds nodes and edges as a run patch does, leaving the base alone", () => {
    const patched = applyPatch(definition, [
      { op: "add", path: "/nodes/-", value: { id: "notify", type: "noop" } },
      { op: "add", path: "/edges/-", value: { from: "publish", to: "notify" } },
      { op: "replace", path: "/nodes/0/config/url", value: "https://x" },
      { op: "remove", path: "/outputs" },
    ]);
    expect(patched.nodes.map((n) => n.id)).toContain("notify");
    expect(patched.edges).toHaveLength(4);
    expect(patched.nodes[0].config?.url).toBe("https://x");
    expect(patched.outputs).toBeUndefined();
    expect(definition.nodes).toHaveLength(4);
  });

  it("names a bad op", () => {
    expect(() => applyPatch(definition, [{ op: "frob", path: "/x" }])).toThrow(/op "frob"/);
  });
});

describe("patched nodes", () => {
  it("places nodes without positions right of their sources, keeping the others", () => {
    const def: Definition = {
      nodes: [
        { id: "a", type: "noop", metadata: { ui: { x: 0, y: 0 } } },
        { id: "b", type: "noop", metadata: { ui: { x: 300, y: 0 } } },
        { id: "c", type: "noop" },
        { id: "d", type: "noop" },
      ],
      edges: [{ from: "a", to: "b" }, { from: "b", to: "c" }, { from: "c", to: "d" }],
    };
    const pos = Object.fromEntries(definitionToCanvas(def).nodes.map((n) => [n.id, n.position]));
    expect(pos.a).toEqual({ x: 0, y: 0 });
    expect(pos.b).toEqual({ x: 300, y: 0 });
    expect(pos.c.x).toBeGreaterThan(300);
    expect(pos.d.x).toBeGreaterThan(pos.c.x);
  });
});
