// The runs page's filters and the GET /api/v1/runs query they make; and which live events a shown page takes.
import type { RunEvent, RunStatus } from "../api/types";

export type RunSource = "" | "api" | "schedule" | "trigger" | "child";

export type RunFilters = {
  statuses: RunStatus[];
  workflow: string;
  /** Local date-time strings as a ``datetime-local`` input gives them ("2026-11-30T18:00"), or "". */
  from: string;
  to: string;
  /** A key id, or "" for anyone. */
  startedBy: string;
  source: RunSource;
  scheduleId: string;
  triggerId: string;
  /** The start of a run id. */
  search: string;
};

export const NO_FILTERS: RunFilters = {
  statuses: [],
  workflow: "",
  from: "",
  to: "",
  startedBy: "",
  source: "",
  scheduleId: "",
  triggerId: "",
  search: "",
};

export const PAGE_SIZE = 25;

/** The query string (without "?") of one page of runs under ``filters``; times become UTC ISO strings. */
export function filtersToQuery(filters: RunFilters, cursor: string | null = null, limit = PAGE_SIZE): string {
  const query = new URLSearchParams();
  for (const status of filters.statuses) query.append("status", status);
  const set = (name: string, value: string) => {
    if (value.trim()) query.set(name, value.trim());
  };
  set("workflow", filters.workflow);
  set("created_after", localToIso(filters.from));
  set("created_before", localToIso(filters.to));
  set("started_by", filters.startedBy);
  set("source", filters.source);
  set("schedule_id", filters.scheduleId);
  set("trigger_id", filters.triggerId);
  set("id_prefix", filters.search);
  query.set("limit", String(limit));
  if (cursor) query.set("cursor", cursor);
  return query.toString();
}

function localToIso(value: string): string {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toISOString();
}

/** Whether ``filters`` narrow the list at all. */
export function hasFilters(filters: RunFilters): boolean {
  return JSON.stringify(filters) !== JSON.stringify(NO_FILTERS);
}

export type RunRow = {
  id: string;
  workflow_id?: string;
  workflow_name: string;
  version: number;
  status: RunStatus;
  created_at: string;
  started_by?: string | null;
  schedule_id?: string | null;
  trigger_id?: string | null;
  parent_run_id?: string | null;
  patches?: number;
};

const TERMINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

/** ``rows`` with a tenant event applied to the row of its run, if shown; ``known`` says whether it was. */
export function applyToRows(rows: RunRow[], event: RunEvent): { rows: RunRow[]; known: boolean } {
  const index = rows.findIndex((r) => r.id === event.run_id);
  if (index < 0) return { rows, known: false };
  const row = { ...rows[index] };
  if (event.type === "run_started" && row.status === "queued") row.status = "running";
  else if (event.type === "run_resumed") row.status = "running";
  else if (event.type === "workflow_patched") row.patches = (row.patches ?? 0) + 1;
  else if (event.type === "approval_requested" && !TERMINAL.has(row.status)) row.status = "waiting";
  else if (event.type === "approval_decided" && row.status === "waiting") row.status = "running";
  else if (event.type.startsWith("run_") && TERMINAL.has(event.type.slice(4))) row.status = event.type.slice(4) as RunStatus;
  else return { rows, known: true };
  return { rows: rows.map((r, i) => (i === index ? row : r)), known: true };
}
