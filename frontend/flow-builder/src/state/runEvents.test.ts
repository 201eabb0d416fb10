import { describe, expect, it } from "vitest";
import type { RunEvent } from "../api/types";
import { applyEvents, compareIds, emptyRunView, parseMessage, resumeCursor } from "./runEvents";

const ev = (id: string, type: string, node_id?: string, data: Record<string, unknown> = {}): RunEvent => ({
  id,
  type,
  run_id: "r1",
  node_id,
  ts: Number(id.split("-")[0]),
  data,
});

const history: RunEvent[] = [
  ev("100-0", "run_started", undefined, { workflow_name: "wf", version: 2 }),
  ev("101-0", "node_queued", "a", { attempt: 1 }),
  ev("102-0", "node_started", "a", { attempt: 1 }),
  ev("103-0", "node_succeeded", "a", { attempt: 1, exec_ms: 4.5, queue_ms: 1, output: '{"x": 1}' }),
  ev("103-1", "node_queued", "b", { attempt: 1 }),
  ev("104-0", "approval_requested", "b", { approval_id: "ap1", title: "Ship?" }),
];

describe("stream ids", () => {
  it("sort by time then sequence, numerically", () => {
    expect(compareIds("9-0", "10-0")).toBe(-1);
    expect(compareIds("10-2", "10-10")).toBe(-1);
    expect(compareIds("10-0", "10")).toBe(0);
    expect(compareIds("11-0", "10-99")).toBe(1);
  });
});

describe("applyEvents", () => {
  it("builds node states, durations and outputs in order", () => {
    const view = applyEvents(emptyRunView(), history);
    expect(view.status).toBe("waiting");
    expect(view.workflowName).toBe("wf");
    expect(view.nodes.a).toMatchObject({ status: "succeeded", attempt: 1, execMs: 4.5, output: { x: 1 } });
    expect(view.nodes.b.status).toBe("waiting");
    expect(view.approvals.ap1).toMatchObject({ nodeId: "b", title: "Ship?" });
    expect(view.lastId).toBe("104-0");
  });

  it("ignores an event seen before, even in a later batch (dedupe by id)", () => {
    const once = applyEvents(emptyRunView(), history);
    const twice = applyEvents(once, history);
    expect(twice).toBe(once);
    expect(twice.applied).toBe(history.length);
  });

  it("leaves the view it was given as it was, and keeps the nodes no event of the batch touched", () => {
    const before = applyEvents(emptyRunView(), history.slice(0, 4));
    const snapshot = JSON.stringify(before);
    const after = applyEvents(before, [ev("105-0", "node_queued", "c", { attempt: 1 }), ev("105-1", "node_started", "c")]);
    expect(JSON.stringify(before)).toBe(snapshot);
    expect(before.nodes.c).toBeUndefined();
    expect(after.nodes.c.status).toBe("running");
    expect(after.nodes.a).toBe(before.nodes.a);
    expect(after.applied).toBe(before.applied + 2);
  });

  it("ignores events older than the last applied one", () => {
    const view = applyEvents(emptyRunView(), [history[0], history[2]]);
    const after = applyEvents(view, [history[1]]);
    expect(after.nodes.a.status).toBe("running");
  });

  it("removes a decided approval and ends with the terminal event", () => {
    const view = applyEvents(emptyRunView(), [
      ...history,
      ev("105-0", "approval_decided", "b", { approval_id: "ap1", status: "approved", decision: "approve" }),
      ev("105-1", "node_succeeded", "b", { attempt: 1, branch: "approved" }),
      ev("106-0", "run_succeeded"),
    ]);
    expect(view.approvals).toEqual({});
    expect(view.nodes.b).toMatchObject({ status: "succeeded", branch: "approved" });
    expect(view).toMatchObject({ status: "succeeded", ended: true });
  });

  it("keeps a pending approval while more decisions are needed", () => {
    const view = applyEvents(emptyRunView(), [
      ...history,
      ev("105-0", "approval_decided", "b", { approval_id: "ap1", status: "pending", decision: "approve" }),
    ]);
    expect(Object.keys(view.approvals)).toEqual(["ap1"]);
  });

  it("records patches and the nodes they add", () => {
    const view = applyEvents(emptyRunView(), [
      ...history,
      ev("105-0", "workflow_patched", undefined, { from_version: 1, to_version: 2, author: "key:k1", added_nodes: ["c", "d"] }),
    ]);
    expect(view.patches).toHaveLength(1);
    expect(view.patches[0]).toMatchObject({ author: "key:k1", toVersion: 2 });
    expect(view.addedNodes).toEqual({ c: 2, d: 2 });
  });

  it("appends log lines without copying, keeps truncation, never twice", () => {
    let view = emptyRunView();
    const logs = Array.from({ length: 1000 }, (_, i) => ev(`${200 + i}-0`, "log", "a", { line: `line ${i}` }));
    view = applyEvents(view, logs.slice(0, 600));
    const shared = view.logs.a.lines;
    view = applyEvents(view, logs.slice(500));
    view = applyEvents(view, [
      ev("5000-0", "log", "a", { attempt: 1, lines: [{ id: "1-1001", kind: "text", line: "x" }, { id: "1-1002", kind: "log", line: "y" }] }),
      ev("5001-0", "log", "a", { attempt: 1, truncated: true, dropped_lines: 7 }),
    ]);
    expect(view.logs.a.lines).toBe(shared);
    expect(view.logs.a.count).toBe(1002);
    expect(view.logs.a.lines[1001]).toEqual({ id: "5000-0/1-1002", text: "y", level: "log" });
    expect(view.logs.a.lines[999].text).toBe("line 999");
    expect(view.logs.a.truncated).toBe(true);
  });

  it("a retry returns the node to queued and counts it", () => {
    const view = applyEvents(emptyRunView(), [
      ...history.slice(0, 3),
      ev("103-0", "node_retrying", "a", { attempt: 2, error: { message: "boom" } }),
    ]);
    expect(view.nodes.a).toMatchObject({ status: "queued", attempt: 2, retries: 1 });
  });
});

describe("resync", () => {
  it("parses the resync message and resumes from the last applied id", () => {
    const view = applyEvents(emptyRunView(), history.slice(0, 4));
    const message = parseMessage('{"type": "resync", "after": "103-0"}');
    expect(message).toEqual({ kind: "resync", after: "103-0" });
    expect(resumeCursor(view, message.kind === "resync" ? message : undefined)).toBe("103-0");
  });

  it("never resumes after an event that was not applied", () => {
    const view = applyEvents(emptyRunView(), history.slice(0, 2));
    expect(resumeCursor(view, { after: "104-0" })).toBe("101-0");
  });

  it("replaying from an older cursor after a resync shows nothing twice", () => {
    const first = applyEvents(emptyRunView(), history.slice(0, 4));
    const replayed = applyEvents(first, history.slice(1));
    expect(replayed.applied).toBe(history.length);
    expect(replayed.nodes.b.status).toBe("waiting");
  });

  it("parses events and ignores anything else", () => {
    expect(parseMessage('{"id": "1-0", "type": "run_started", "run_id": "r"}').kind).toBe("event");
    expect(parseMessage("not json").kind).toBe("other");
    expect(parseMessage('{"type": "ping"}').kind).toBe("other");
  });
});
