import { describe, expect, it } from "vitest";
import type { RunEvent } from "../api/types";
import { applyAttemptEvents, computeTimeline, emptyAttempts, formatMs, nodeAttempts } from "./attempts";

const ev = (id: string, type: string, node_id?: string, data: Record<string, unknown> = {}): RunEvent => ({
  id,
  type,
  run_id: "r1",
  node_id,
  ts: Number(id.split("-")[0]),
  data,
});

// "a" succeeds; "b" fails once (retried), then fails for good; the run fails, is resumed and "b" succeeds.
const history: RunEvent[] = [
  ev("1000-0", "run_started"),
  ev("1000-1", "node_queued", "a", { attempt: 1 }),
  ev("1010-0", "node_started", "a", { attempt: 1, worker_id: "w1" }),
  ev("1050-0", "node_succeeded", "a", { attempt: 1, queue_ms: 10, exec_ms: 40 }),
  ev("1050-1", "node_queued", "b", { attempt: 1 }),
  ev("1060-0", "node_retrying", "b", { attempt: 1, error: { message: "boom" } }),
  ev("1060-1", "node_queued", "b", { attempt: 2 }),
  ev("1100-0", "node_failed", "b", { attempt: 2, error: { message: "boom again" } }),
  ev("1100-1", "run_failed"),
  ev("2000-0", "run_resumed", undefined, { nodes: ["b"], inputs_changed: true }),
  ev("2000-1", "node_queued", "b", { attempt: 3 }),
  ev("2005-0", "node_started", "b", { attempt: 3 }),
];

describe("attempts", () => {
  it("lists every attempt of a node across retries and resumes, with its error", () => {
    const view = applyAttemptEvents(emptyAttempts(), history);
    const b = nodeAttempts(view, "b");
    expect(b.map((a) => [a.epoch, a.attempt, a.status])).toEqual([
      [0, 1, "retrying"],
      [0, 2, "failed"],
      [1, 3, "running"],
    ]);
    expect(b[1].error).toEqual({ message: "boom again" });
    expect(nodeAttempts(view, "a")[0]).toMatchObject({ status: "succeeded", queueMs: 10, execMs: 40, workerId: "w1" });
  });

  it("ignores events already applied, and ends open attempts with the run", () => {
    const once = applyAttemptEvents(emptyAttempts(), history);
    expect(applyAttemptEvents(once, history)).toBe(once);
    const cancelled = applyAttemptEvents(once, [ev("2100-0", "run_cancelled")]);
    expect(nodeAttempts(cancelled, "b")[2]).toMatchObject({ status: "cancelled", endedTs: 2100 });
  });

  it("counts child-run events so the view reads the children again", () => {
    const view = applyAttemptEvents(emptyAttempts(), [ev("5-0", "child_run_started", "m", { child_run_id: "c1" })]);
    expect(view.childEvents).toBe(1);
  });
});

describe("timeline", () => {
  it("places each attempt's queued and running parts from the first queueing", () => {
    const view = applyAttemptEvents(emptyAttempts(), history);
    const timeline = computeTimeline(view, 2105);
    expect(timeline.startTs).toBe(1000);
    expect(timeline.spanMs).toBe(1105);
    expect(timeline.rows.map((r) => r.nodeId)).toEqual(["a", "b"]);
    const [a] = timeline.rows[0].bars;
    expect([a.queued, a.started, a.end, a.open]).toEqual([0, 10, 50, false]);
    const [b1, b2, b3] = timeline.rows[1].bars;
    // No start reported for b's failed attempts: all queued (a built-in that failed at once).
    expect([b1.queued, b1.started, b1.end]).toEqual([50, 60, 60]);
    expect([b2.queued, b2.started, b2.end]).toEqual([60, 100, 100]);
    // Still running: its bar ends at "now".
    expect([b3.queued, b3.started, b3.end, b3.open]).toEqual([1000, 1005, 1105, true]);
  });

  it("takes the running part from exec_ms when the start event is missing", () => {
    const view = applyAttemptEvents(emptyAttempts(), [
      ev("100-0", "node_queued", "x", { attempt: 1 }),
      ev("130-0", "node_succeeded", "x", { attempt: 1, exec_ms: 20 }),
    ]);
    const [bar] = computeTimeline(view, 500).rows[0].bars;
    expect([bar.queued, bar.started, bar.end]).toEqual([0, 10, 30]);
  });

  it("is empty before anything was queued", () => {
    expect(computeTimeline(emptyAttempts(), 42)).toEqual({ startTs: 42, spanMs: 0, rows: [] });
  });

  it("formats durations for people", () => {
    expect([formatMs(undefined), formatMs(4.56), formatMs(850), formatMs(2400), formatMs(185_000)]).toEqual([
      "–",
      "4.6 ms",
      "850 ms",
      "2.40 s",
      "3 min 5 s",
    ]);
  });
});
