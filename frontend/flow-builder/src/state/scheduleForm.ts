// The schedule form: what the user typed → the body of POST /api/v1/schedules, or an error per field; and how a
// schedule's timing and fire times read (docs/schedules.md).
import type { Schedule, ScheduleBody } from "../api/admin";

export type ScheduleDraft = {
  mode: "interval" | "cron";
  every: string;
  unit: "s" | "min" | "h";
  cron: string;
  timezone: string;
  inputs: string;
  overlap: "skip" | "allow";
  paused: boolean;
};

export const EMPTY_DRAFT: ScheduleDraft = {
  mode: "interval",
  every: "60",
  unit: "s",
  cron: "0 * * * *",
  timezone: "UTC",
  inputs: "{}",
  overlap: "skip",
  paused: false,
};

/** Field name → message, for the inputs a message belongs to. */
export type FieldErrors = Partial<Record<keyof ScheduleDraft | "form", string>>;

export type Parsed<T> = { ok: true; value: T } | { ok: false; errors: FieldErrors };

const SECONDS = { s: 1, min: 60, h: 3600 } as const;

/** The request body for ``draft`` of ``workflow``, or what is wrong with it (checked before asking the API). */
export function scheduleBody(workflow: string, draft: ScheduleDraft): Parsed<ScheduleBody> {
  const errors: FieldErrors = {};
  let inputs: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(draft.inputs.trim() || "{}");
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) errors.inputs = "expected a JSON object, such as {\"city\": \"Oslo\"}";
    else inputs = parsed as Record<string, unknown>;
  } catch (exc) {
    errors.inputs = `not JSON: ${(exc as Error).message}`;
  }
  const body: ScheduleBody = { workflow, inputs, overlap: draft.overlap, paused: draft.paused };
  if (draft.mode === "interval") {
    const every = Number(draft.every);
    if (!/^\d+$/.test(draft.every.trim()) || every < 1) errors.every = "expected a whole number of at least 1";
    else body.interval_s = every * SECONDS[draft.unit];
  } else {
    const fields = draft.cron.trim().split(/\s+/).filter(Boolean);
    if (fields.length < 5 && !draft.cron.trim().startsWith("@")) errors.cron = "expected 5 fields (6 with seconds), such as 0 6 * * 1-5";
    else body.cron = draft.cron.trim();
    if (!draft.timezone.trim()) errors.timezone = "expected an IANA time zone, such as Europe/Paris";
    else body.timezone = draft.timezone.trim();
  }
  return Object.keys(errors).length ? { ok: false, errors } : { ok: true, value: body };
}

const API_FIELDS: Record<string, keyof ScheduleDraft> = {
  "body.interval_s": "every",
  "body.cron": "cron",
  "body.timezone": "timezone",
  "body.inputs": "inputs",
  "body.overlap": "overlap",
};

/** The API's 422 ``details`` ({path, message}) pinned to the form's fields; the rest go to ``form``. */
export function apiFieldErrors(details: unknown): FieldErrors {
  const errors: FieldErrors = {};
  if (!Array.isArray(details)) return errors;
  for (const detail of details) {
    if (!detail || typeof detail !== "object") continue;
    const { path, message } = detail as { path?: unknown; message?: unknown };
    if (typeof message !== "string") continue;
    const where = typeof path === "string" ? Object.entries(API_FIELDS).find(([prefix]) => path === prefix || path.startsWith(prefix + "."))?.[1] : undefined;
    const field = where ?? "form";
    errors[field] = errors[field] ? `${errors[field]}; ${message}` : message;
  }
  return errors;
}

/** "every 5 s", "every 2 min", "every 1 h 30 min", or "cron 0 6 * * 1-5 (Europe/Paris)". */
export function describeTiming(schedule: Pick<Schedule, "cron" | "interval_s" | "timezone">): string {
  if (schedule.interval_s !== null) return `every ${duration(schedule.interval_s)}`;
  return `cron ${schedule.cron} (${schedule.timezone})`;
}

function duration(seconds: number): string {
  const parts: string[] = [];
  const hours = Math.floor(seconds / 3600);
  const minutes = Math.floor((seconds % 3600) / 60);
  const rest = seconds % 60;
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (rest || parts.length === 0) parts.push(`${rest} s`);
  return parts.join(" ");
}

/** ``iso`` relative to ``now``: "in 4 s", "3 min ago", "in 2 h", "in 3 d"; "now" within half a second. */
export function relativeTime(iso: string, now: number): string {
  const deltaMs = new Date(iso).getTime() - now;
  const seconds = Math.round(Math.abs(deltaMs) / 1000);
  if (seconds === 0) return "now";
  const amount =
    seconds < 60 ? `${seconds} s` : seconds < 3600 ? `${Math.round(seconds / 60)} min` : seconds < 86400 ? `${Math.round(seconds / 3600)} h` : `${Math.round(seconds / 86400)} d`;
  return deltaMs > 0 ? `in ${amount}` : `${amount} ago`;
}
