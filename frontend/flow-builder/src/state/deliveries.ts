// A subscription's delivery log read for people: counts per status, and where a "send test" stands.
import type { Delivery } from "../api/admin";

export type TestState = { state: "waiting" | "retrying" | "delivered" | "failed"; detail: string };

/** How many attempts of the log ended each way: "3 delivered · 1 retrying". */
export function deliveryCounts(items: Delivery[]): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(item.status, (counts.get(item.status) ?? 0) + 1);
  return ["delivered", "retrying", "failed"]
    .filter((status) => counts.has(status))
    .map((status) => `${counts.get(status)} ${status}`)
    .join(" · ");
}

/** Where the test event ``eventId`` stands, from the newest attempt of it in ``items`` (newest first). */
export function testState(items: Delivery[], eventId: string): TestState {
  const latest = items.find((item) => item.event_id === eventId);
  if (!latest) return { state: "waiting", detail: "queued; a coordinator sends it within a few seconds" };
  const code = latest.response_code !== null ? ` (HTTP ${latest.response_code})` : "";
  if (latest.status === "delivered") return { state: "delivered", detail: `delivered on attempt ${latest.attempt}${code}` };
  const error = latest.error ? `: ${latest.error}` : "";
  if (latest.status === "retrying") return { state: "retrying", detail: `attempt ${latest.attempt} failed${code}${error}; retrying` };
  return { state: "failed", detail: `failed${code}${error}` };
}
