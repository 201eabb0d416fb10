// Pending approvals kept from the tenant feed: a request adds one, a decision or the end of its run removes it.
// An approval never becomes pending again, so what a feed removed stays removed when a list read earlier lands.
import type { Approval, RunEvent } from "../api/types";

export type ApprovalFeed = {
  pending: Approval[];
  /** Approvals settled (decided, timed out, their run ended) as seen so far. */
  settled: Set<string>;
  /** Runs that ended and were not resumed since: their approvals were cancelled with them. */
  endedRuns: Set<string>;
};

const RUN_ENDS = new Set(["run_succeeded", "run_failed", "run_cancelled", "run_timed_out"]);

export function emptyFeed(): ApprovalFeed {
  return { pending: [], settled: new Set(), endedRuns: new Set() };
}

/** ``feed`` after one tenant event; ``arrived`` is the approval it requested, if it is new. */
export function applyApprovalEvent(feed: ApprovalFeed, event: RunEvent): { feed: ApprovalFeed; arrived?: Approval } {
  const data = event.data ?? {};
  if (event.type === "approval_requested" && typeof data.approval_id === "string" && event.node_id) {
    const id = data.approval_id;
    if (feed.settled.has(id) || feed.pending.some((a) => a.id === id)) return { feed };
    const approval: Approval = {
      id,
      run_id: event.run_id,
      node_id: event.node_id,
      status: "pending",
      title: typeof data.title === "string" ? data.title : "Approval",
      description: typeof data.description === "string" ? data.description : null,
      created_at: new Date(event.ts).toISOString(),
      expires_at: typeof data.expires_at === "string" ? data.expires_at : null,
    };
    return { feed: { ...feed, pending: [...feed.pending, approval] }, arrived: approval };
  }
  if (event.type === "approval_decided" && typeof data.approval_id === "string" && data.status !== "pending") {
    return { feed: settle(feed, (a) => a.id === data.approval_id, [data.approval_id]) };
  }
  if (RUN_ENDS.has(event.type)) {
    const endedRuns = new Set(feed.endedRuns).add(event.run_id);
    return { feed: { ...settle(feed, (a) => a.run_id === event.run_id, []), endedRuns } };
  }
  if (event.type === "run_resumed" && feed.endedRuns.has(event.run_id)) {
    const endedRuns = new Set(feed.endedRuns);
    endedRuns.delete(event.run_id);
    return { feed: { ...feed, endedRuns } };
  }
  return { feed };
}

function settle(feed: ApprovalFeed, match: (a: Approval) => boolean, ids: string[]): ApprovalFeed {
  const settled = new Set(feed.settled);
  for (const id of ids) settled.add(id);
  for (const approval of feed.pending) if (match(approval)) settled.add(approval.id);
  return { ...feed, pending: feed.pending.filter((a) => !match(a)), settled };
}

/** ``feed`` merged with a list of pending approvals read from the API (at any moment, possibly stale). */
export function mergeListed(feed: ApprovalFeed, listed: Approval[]): ApprovalFeed {
  const known = new Set(feed.pending.map((a) => a.id));
  const fresh = listed.filter((a) => !known.has(a.id) && !feed.settled.has(a.id) && !feed.endedRuns.has(a.run_id));
  const pending = [...feed.pending, ...fresh].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  return { ...feed, pending };
}
