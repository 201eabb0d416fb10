import { describe, expect, it } from "vitest";
import type { Definition } from "../api/types";
import { changedFields, diffDefinitions } from "./diff";

const v1: Definition = {
  nodes: [
    { id: "a", type: "http", config: { url: "https://a", method: "GET" }, metadata: { ui: { x: 1, y: 1 } } },
    { id: "b", type: "noop" },
    { id: "c", type: "noop" },
  ],
  edges: [{ from: "a", to: "b" }, { from: "b", to: "c" }],
};
const v2: Definition = {
  nodes: [
    { id: "a", type: "http", config: { url: "https://b", method: "GET" }, metadata: { ui: { x: 90, y: 1 } } },
    { id: "b", type: "noop" },
    { id: "d", type: "noop" },
  ],
  edges: [{ from: "a", to: "b", when: "output.status == 200" }, { from: "b", to: "d" }],
};

describe("diffDefinitions", () => {
  it("colours nodes and edges added, removed and changed, listing changed config fields", () => {
    const diff = diffDefinitions(v1, v2);
    const nodes = Object.fromEntries(diff.nodes.map((n) => [n.id, [n.change, n.fields]]));
    expect(nodes).toEqual({ a: ["changed", ["config.url"]], b: ["same", []], c: ["removed", []], d: ["added", []] });
    const edges = Object.fromEntries(diff.edges.map((e) => [e.key, e.change]));
    expect(edges).toEqual({ "a->b": "changed", "b->d": "added", "b->c": "removed" });
  });

  it("does not count moved nodes as changed", () => {
    const moved = { ...v1, nodes: v1.nodes.map((n) => ({ ...n, metadata: { ui: { x: 500, y: 500 } } })) };
    expect(diffDefinitions(v1, moved).nodes.every((n) => n.change === "same")).toBe(true);
  });

  it("lists nested and type changes", () => {
    expect(changedFields({ config: { a: { b: 1 } }, type: "x" }, { config: { a: { b: 2 } }, type: "y" })).toEqual(["config.a.b", "type"]);
    expect(changedFields({ a: [1, 2] }, { a: [1, 2] })).toEqual([]);
  });
});
