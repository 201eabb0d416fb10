import { describe, expect, it } from "vitest";
import type { RunEvent } from "../api/types";
import { applyToRows, filtersToQuery, hasFilters, NO_FILTERS, type RunRow } from "./runFilters";

describe("filters to query", () => {
  it("sends nothing but the page size without filters", () => {
    expect(filtersToQuery(NO_FILTERS)).toBe("limit=25");
    expect(hasFilters(NO_FILTERS)).toBe(false);
  });

  it("repeats status, trims text, converts local times to UTC and adds the cursor", () => {
    const filters = {
      ...NO_FILTERS,
      statuses: ["failed" as const, "timed_out" as const],
      workflow: "  etl ",
      from: "2026-11-30T10:00",
      startedBy: "key-1",
      source: "schedule" as const,
      search: "ab12",
    };
    const query = new URLSearchParams(filtersToQuery(filters, "CURSOR", 10));
    expect(query.getAll("status")).toEqual(["failed", "timed_out"]);
    expect(query.get("workflow")).toBe("etl");
    expect(query.get("created_after")).toBe(new Date("2026-11-30T10:00").toISOString());
    expect(query.has("created_before")).toBe(false);
    expect(query.get("started_by")).toBe("key-1");
    expect(query.get("source")).toBe("schedule");
    expect(query.get("id_prefix")).toBe("ab12");
    expect(query.get("limit")).toBe("10");
    expect(query.get("cursor")).toBe("CURSOR");
    expect(hasFilters(filters)).toBe(true);
  });

  it("leaves out a time that does not parse", () => {
    expect(filtersToQuery({ ...NO_FILTERS, to: "not a time" })).toBe("limit=25");
  });
});

describe("live rows", () => {
  const rows: RunRow[] = [{ id: "r1", workflow_name: "w", version: 1, status: "running", created_at: "2026-01-01T00:00:00Z" }];
  const ev = (type: string, run_id = "r1"): RunEvent => ({ id: "1-0", type, run_id, ts: 1, data: {} });

  it("moves a shown run's status with its events", () => {
    expect(applyToRows(rows, ev("run_failed")).rows[0].status).toBe("failed");
    expect(applyToRows(rows, ev("approval_requested")).rows[0].status).toBe("waiting");
    expect(applyToRows(rows, ev("workflow_patched")).rows[0].patches).toBe(1);
  });

  it("says when an event's run is not shown, and changes nothing then", () => {
    const applied = applyToRows(rows, ev("run_started", "r2"));
    expect(applied.known).toBe(false);
    expect(applied.rows).toBe(rows);
  });
});
