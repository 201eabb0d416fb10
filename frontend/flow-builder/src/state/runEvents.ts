// The run view's state, built only from the run's events: applying an event twice, or one older than the
// last applied, changes nothing, so replays after a reconnect or a resync never show anything twice.
import type { RunEvent } from "../api/types";

export type NodeView = {
  status: "pending" | "queued" | "running" | "waiting" | "succeeded" | "failed" | "skipped";
  attempt: number;
  queuedTs?: number;
  startedTs?: number;
  endedTs?: number;
  queueMs?: number;
  execMs?: number;
  output?: unknown;
  outputRef?: string;
  branch?: string;
  error?: unknown;
  reason?: string;
  retries: number;
};

export type PendingApproval = {
  id: string;
  nodeId: string;
  title: string;
  description?: string;
  expiresAt?: string;
};

export type PatchEvent = {
  eventId: string;
  fromVersion: number;
  toVersion: number;
  author: string;
  reason?: string;
  addedNodes: string[];
  addedEdges: unknown[];
};

/** One stored entry; ``more``: a piece of a streamed text line that the next entry continues. */
export type LogLine = { id: string; text: string; level?: string; more?: boolean };

/** Lines of one node's log. ``lines`` is append-only and shared between states; ``count`` says how many a
 * state holds, so appending 100,000 lines never copies the array. */
export type NodeLog = { lines: LogLine[]; count: number; truncated: boolean };

export type RunView = {
  lastId: string;
  applied: number;
  status: string;
  workflowName?: string;
  version?: number;
  ended: boolean;
  error?: unknown;
  nodes: Record<string, NodeView>;
  approvals: Record<string, PendingApproval>;
  patches: PatchEvent[];
  /** Node id → the IR version of the patch that added it. */
  addedNodes: Record<string, number>;
  logs: Record<string, NodeLog>;
};

export const START_ID = "0-0";
const TERMINAL = new Set(["run_succeeded", "run_failed", "run_cancelled", "run_timed_out"]);

export function emptyRunView(): RunView {
  return {
    lastId: START_ID,
    applied: 0,
    status: "queued",
    ended: false,
    nodes: {},
    approvals: {},
    patches: [],
    addedNodes: {},
    logs: {},
  };
}

/** -1, 0 or 1 as stream id ``a`` sorts before, equal to or after ``b`` (``5`` reads as ``5-0``). */
export function compareIds(a: string, b: string): number {
  const [am, as] = splitId(a);
  const [bm, bs] = splitId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}

function splitId(id: string): [number, number] {
  const [ms, seq] = id.split("-");
  return [Number(ms), Number(seq ?? 0)];
}

/** What a socket message means for the reader: an event, or a request to reconnect after a cursor. */
export type Message = { kind: "event"; event: RunEvent } | { kind: "resync"; after: string } | { kind: "other" };

export function parseMessage(text: string): Message {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "other" };
  }
  if (!value || typeof value !== "object") return { kind: "other" };
  const record = value as Record<string, unknown>;
  if (record.type === "resync" && typeof record.after === "string") return { kind: "resync", after: record.after };
  if (typeof record.id === "string" && typeof record.type === "string") {
    const event = { data: {}, ...record } as RunEvent;
    return { kind: "event", event };
  }
  return { kind: "other" };
}

/** The cursor to reconnect from after a resync: our own last applied id, so nothing is skipped or repeated. */
export function resumeCursor(view: RunView, resync?: { after: string }): string {
  if (resync && compareIds(resync.after, view.lastId) < 0) return resync.after;
  return view.lastId;
}

/** ``view`` with ``events`` applied in order; events at or before ``view.lastId`` are ignored. ``view`` is not
 * changed: the result is a new view whose node map is copied once per batch (not once per event, which cost a
 * 1,000-node run a million copies per 1,000 events), and a node object is replaced only when an event changes it. */
export function applyEvents(view: RunView, events: RunEvent[]): RunView {
  let next: RunView | null = null;
  for (const event of events) {
    if (compareIds(event.id, (next ?? view).lastId) <= 0) continue;
    next ??= { ...view, nodes: { ...view.nodes } };
    applyOne(next, event);
  }
  return next ?? view;
}

/** Applies ``event`` to ``next``, which this batch owns (its node map included). */
function applyOne(next: RunView, event: RunEvent): void {
  next.lastId = event.id;
  next.applied += 1;
  const data = event.data ?? {};
  const nodeId = event.node_id;
  const node = (patch: Partial<NodeView>) => {
    if (!nodeId) return;
    const current = next.nodes[nodeId] ?? { status: "pending", attempt: 0, retries: 0 };
    next.nodes[nodeId] = { ...current, ...patch };
  };
  const attempt = typeof data.attempt === "number" ? data.attempt : undefined;
  switch (event.type) {
    case "run_started":
      next.status = "running";
      next.workflowName = str(data.workflow_name);
      next.version = typeof data.version === "number" ? data.version : undefined;
      break;
    case "run_resumed":
      next.status = "running";
      next.ended = false;
      break;
    case "node_queued":
      node({ status: "queued", attempt: attempt ?? 1, queuedTs: event.ts, error: undefined });
      break;
    case "node_started":
      node({ status: "running", attempt: attempt ?? 1, startedTs: event.ts });
      if (next.status === "queued") next.status = "running";
      break;
    case "node_retrying": {
      const retries = (nodeId && next.nodes[nodeId]?.retries) || 0;
      node({ status: "queued", attempt: attempt ?? 1, error: data.error, retries: retries + 1 });
      break;
    }
    case "node_succeeded":
      node({
        status: "succeeded",
        attempt: attempt ?? 1,
        endedTs: event.ts,
        queueMs: num(data.queue_ms),
        execMs: num(data.exec_ms),
        branch: str(data.branch),
        ...outputOf(data.output),
      });
      break;
    case "node_failed":
      node({ status: "failed", attempt: attempt ?? 1, endedTs: event.ts, error: data.error });
      break;
    case "node_skipped":
      node({ status: "skipped", endedTs: event.ts, reason: str(data.reason) });
      break;
    case "approval_requested": {
      node({ status: "waiting", startedTs: event.ts });
      const id = str(data.approval_id);
      if (id && nodeId) {
        next.approvals = {
          ...next.approvals,
          [id]: {
            id,
            nodeId,
            title: str(data.title) ?? "Approval",
            description: str(data.description),
            expiresAt: str(data.expires_at),
          },
        };
      }
      if (next.status === "running") next.status = "waiting";
      break;
    }
    case "approval_decided": {
      const id = str(data.approval_id);
      if (id && data.status !== "pending" && next.approvals[id]) {
        const { [id]: _decided, ...rest } = next.approvals;
        next.approvals = rest;
        if (nodeId && next.nodes[nodeId]?.status === "waiting") node({ status: "running" });
        if (next.status === "waiting" && Object.keys(rest).length === 0) next.status = "running";
      }
      break;
    }
    case "workflow_patched": {
      const patch: PatchEvent = {
        eventId: event.id,
        fromVersion: num(data.from_version) ?? 0,
        toVersion: num(data.to_version) ?? 0,
        author: str(data.author) ?? "unknown",
        reason: str(data.reason),
        addedNodes: Array.isArray(data.added_nodes) ? data.added_nodes.map(String) : [],
        addedEdges: Array.isArray(data.added_edges) ? data.added_edges : [],
      };
      next.patches = [...next.patches, patch];
      const added = { ...next.addedNodes };
      for (const id of patch.addedNodes) added[id] = patch.toVersion;
      next.addedNodes = added;
      break;
    }
    case "log":
      if (nodeId) appendLog(next, nodeId, event);
      break;
    default:
      if (TERMINAL.has(event.type)) {
        next.status = event.type.slice("run_".length);
        next.ended = true;
        next.error = data.error;
      }
  }
}

function appendLog(view: RunView, nodeId: string, event: RunEvent): void {
  const data = event.data ?? {};
  const current = view.logs[nodeId] ?? { lines: [], count: 0, truncated: false };
  const incoming = logLines(event);
  // Only the state that owns the array's tail may append; an older state's view keeps its own count.
  const lines = current.lines.length === current.count ? current.lines : current.lines.slice(0, current.count);
  for (const line of incoming) lines.push(line);
  view.logs = {
    ...view.logs,
    [nodeId]: { lines, count: lines.length, truncated: current.truncated || data.truncated === true },
  };
}

/** The lines of one ``log`` event: the agent worker sends ``{lines: [{id, kind, line}]}``; a bare ``line`` is one. */
function logLines(event: RunEvent): LogLine[] {
  const data = event.data ?? {};
  if (Array.isArray(data.lines)) {
    return data.lines.map((item: unknown, index: number) => {
      const record = (item && typeof item === "object" ? item : { line: item }) as Record<string, unknown>;
      const text = record.line ?? record.text ?? "";
      return {
        id: `${event.id}/${str(record.id) ?? index}`,
        text: typeof text === "string" ? text : JSON.stringify(text),
        level: str(record.kind) ?? str(record.level),
        ...(record.more === true ? { more: true } : {}),
      };
    });
  }
  const text = data.line ?? data.text;
  if (text === undefined) return [];
  return [{ id: event.id, text: typeof text === "string" ? text : JSON.stringify(text), level: str(data.level) ?? str(data.kind) }];
}

/** An event's ``output``: inline JSON as text, or a ``cas://`` reference to fetch. */
export function outputOf(raw: unknown): { output?: unknown; outputRef?: string } {
  if (typeof raw !== "string") return raw === undefined ? {} : { output: raw };
  if (raw.startsWith("cas://")) return { outputRef: raw };
  try {
    return { output: JSON.parse(raw) };
  } catch {
    return { output: raw };
  }
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}
