// Every attempt of every node of a run, and the run's timeline, built from the run's events alone: retries and
// the attempts of earlier epochs (before a resume) stay listed, which the run resource (latest attempt) cannot say.
import type { RunEvent } from "../api/types";
import { compareIds, START_ID } from "./runEvents";

export type AttemptStatus = "queued" | "running" | "waiting" | "succeeded" | "failed" | "retrying" | "cancelled";

export type Attempt = {
  nodeId: string;
  attempt: number;
  /** The run's life the attempt belongs to: 0, then one more per resume. */
  epoch: number;
  status: AttemptStatus;
  queuedTs?: number;
  startedTs?: number;
  endedTs?: number;
  queueMs?: number;
  execMs?: number;
  workerId?: string;
  error?: unknown;
};

export type AttemptsView = {
  lastId: string;
  epoch: number;
  /** Attempts in the order they were queued. */
  attempts: Attempt[];
  /** Child runs started or ended so far: the view reads the run's children again when it changes. */
  childEvents: number;
};

const OPEN = new Set<AttemptStatus>(["queued", "running", "waiting"]);
const RUN_ENDS = new Set(["run_succeeded", "run_failed", "run_cancelled", "run_timed_out"]);

export function emptyAttempts(): AttemptsView {
  return { lastId: START_ID, epoch: 0, attempts: [], childEvents: 0 };
}

/** ``view`` with ``events`` applied; events at or before ``view.lastId`` change nothing. */
export function applyAttemptEvents(view: AttemptsView, events: RunEvent[]): AttemptsView {
  let next = view;
  for (const event of events) {
    if (compareIds(event.id, next.lastId) <= 0) continue;
    next = applyOne({ ...next, lastId: event.id }, event);
  }
  return next;
}

function applyOne(view: AttemptsView, event: RunEvent): AttemptsView {
  const data = event.data ?? {};
  const nodeId = event.node_id;
  if (event.type === "run_resumed") return { ...view, epoch: view.epoch + 1 };
  if (event.type === "child_run_started" || event.type === "child_run_ended") {
    return { ...view, childEvents: view.childEvents + 1 };
  }
  if (RUN_ENDS.has(event.type)) {
    // Ending a run cancels what it had in flight; those attempts end here.
    const ended = (a: Attempt): Attempt => ({ ...a, status: "cancelled", endedTs: event.ts });
    return { ...view, attempts: view.attempts.map((a) => (OPEN.has(a.status) ? ended(a) : a)) };
  }
  if (!nodeId) return view;
  const attempt = typeof data.attempt === "number" ? data.attempt : undefined;
  const update = (patch: Partial<Attempt>, number = attempt): AttemptsView => {
    const index = findAttempt(view, nodeId, number);
    if (index < 0) {
      if (number === undefined) return view;
      const created: Attempt = { nodeId, attempt: number, epoch: view.epoch, status: "queued", ...patch };
      return { ...view, attempts: [...view.attempts, created] };
    }
    return { ...view, attempts: view.attempts.map((a, i) => (i === index ? { ...a, ...patch } : a)) };
  };
  switch (event.type) {
    case "node_queued":
      return update({ status: "queued", queuedTs: event.ts });
    case "node_started":
      return update({ status: "running", startedTs: event.ts, workerId: str(data.worker_id) });
    case "approval_requested":
      return update({ status: "waiting", startedTs: event.ts });
    case "node_succeeded":
      return update({ status: "succeeded", endedTs: event.ts, queueMs: num(data.queue_ms), execMs: num(data.exec_ms) });
    case "node_failed":
      return update({ status: "failed", endedTs: event.ts, error: data.error });
    case "node_retrying":
      return update({ status: "retrying", endedTs: event.ts, error: data.error });
    default:
      return view;
  }
}

/** The index of ``nodeId``'s attempt ``number`` in the current epoch (its latest attempt when no number). */
function findAttempt(view: AttemptsView, nodeId: string, number: number | undefined): number {
  for (let i = view.attempts.length - 1; i >= 0; i -= 1) {
    const a = view.attempts[i];
    if (a.nodeId !== nodeId || a.epoch !== view.epoch) continue;
    if (number === undefined || a.attempt === number) return i;
  }
  return -1;
}

/** ``nodeId``'s attempts, oldest first. */
export function nodeAttempts(view: AttemptsView, nodeId: string): Attempt[] {
  return view.attempts.filter((a) => a.nodeId === nodeId);
}

export type TimelineBar = {
  attempt: Attempt;
  /** Offsets from the timeline's start, in ms: queued → started → ended (``end`` is ``now`` while open). */
  queued: number;
  started: number;
  end: number;
  open: boolean;
};

export type Timeline = { startTs: number; spanMs: number; rows: { nodeId: string; bars: TimelineBar[] }[] };

/** A Gantt chart of every attempt: one row per node in the order nodes were first queued; ``nowTs`` ends the
 * bars of attempts still open. An attempt whose start was not reported (an instant built-in that failed) shows
 * its whole life as queued, except the part its ``execMs`` says it ran. */
export function computeTimeline(view: AttemptsView, nowTs: number): Timeline {
  const timed = view.attempts.filter((a) => a.queuedTs !== undefined || a.startedTs !== undefined);
  if (!timed.length) return { startTs: nowTs, spanMs: 0, rows: [] };
  const startTs = Math.min(...timed.map((a) => a.queuedTs ?? a.startedTs ?? nowTs));
  const rows = new Map<string, TimelineBar[]>();
  let last = startTs;
  for (const a of timed) {
    const open = OPEN.has(a.status);
    const queuedTs = a.queuedTs ?? a.startedTs ?? nowTs;
    const endTs = Math.max(queuedTs, open ? Math.max(nowTs, queuedTs) : (a.endedTs ?? nowTs));
    const startedTs = a.startedTs ?? (a.execMs !== undefined && !open ? endTs - a.execMs : endTs);
    const started = Math.min(Math.max(startedTs, queuedTs), endTs);
    const bar = { attempt: a, queued: queuedTs - startTs, started: started - startTs, end: endTs - startTs, open };
    last = Math.max(last, endTs);
    rows.set(a.nodeId, [...(rows.get(a.nodeId) ?? []), bar]);
  }
  return { startTs, spanMs: last - startTs, rows: [...rows].map(([nodeId, bars]) => ({ nodeId, bars })) };
}

/** ``ms`` for people: "850 ms", "2.40 s", "3 min 5 s". */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "–";
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}
