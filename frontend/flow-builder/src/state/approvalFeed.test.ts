import { describe, expect, it } from "vitest";
import type { Approval, RunEvent } from "../api/types";
import { applyApprovalEvent, emptyFeed, mergeListed } from "./approvalFeed";

const requested = (id: string, run_id = "r1", ts = 1000): RunEvent => ({
  id: `${ts}-0`,
  type: "approval_requested",
  run_id,
  node_id: "review",
  ts,
  data: { approval_id: id, title: "Ship it?", description: "v2" },
});
const decided = (id: string): RunEvent => ({
  id: "2000-0",
  type: "approval_decided",
  run_id: "r1",
  node_id: "review",
  ts: 2000,
  data: { approval_id: id, status: "approved" },
});
const listed = (id: string, run_id = "r1"): Approval => ({
  id,
  run_id,
  node_id: "review",
  status: "pending",
  title: "Listed",
  created_at: "1970-01-01T00:00:00.500Z",
});

describe("approval feed", () => {
  it("adds a requested approval once and reports it as arrived", () => {
    const first = applyApprovalEvent(emptyFeed(), requested("a1"));
    expect(first.arrived).toMatchObject({ id: "a1", run_id: "r1", node_id: "review", title: "Ship it?", description: "v2" });
    const again = applyApprovalEvent(first.feed, requested("a1"));
    expect(again.arrived).toBeUndefined();
    expect(again.feed.pending).toHaveLength(1);
  });

  it("removes an approval when decided and when its run ends", () => {
    let feed = applyApprovalEvent(emptyFeed(), requested("a1")).feed;
    feed = applyApprovalEvent(feed, requested("a2", "r2")).feed;
    feed = applyApprovalEvent(feed, decided("a1")).feed;
    expect(feed.pending.map((a) => a.id)).toEqual(["a2"]);
    feed = applyApprovalEvent(feed, { id: "3000-0", type: "run_cancelled", run_id: "r2", ts: 3000, data: {} }).feed;
    expect(feed.pending).toEqual([]);
  });

  it("does not bring back from a stale list what the feed already removed", () => {
    let feed = applyApprovalEvent(emptyFeed(), requested("a1")).feed;
    feed = applyApprovalEvent(feed, decided("a1")).feed;
    feed = applyApprovalEvent(feed, { id: "3000-0", type: "run_failed", run_id: "r9", ts: 3000, data: {} }).feed;
    const merged = mergeListed(feed, [listed("a1"), listed("a3", "r9"), listed("a4", "r4")]);
    expect(merged.pending.map((a) => a.id)).toEqual(["a4"]);
  });

  it("keeps listed and pushed approvals oldest first, without duplicates", () => {
    const feed = applyApprovalEvent(emptyFeed(), requested("a1")).feed;
    const merged = mergeListed(feed, [listed("a1"), listed("a0")]);
    expect(merged.pending.map((a) => a.id)).toEqual(["a0", "a1"]);
  });
});
