import { describe, expect, it } from "vitest";
import type { Delivery } from "../api/admin";
import { deliveryCounts, testState } from "./deliveries";
import { allows } from "./roles";
import { exampleCall, hookUrl, secretActions } from "./triggerSecrets";

const secret = (id: string) => ({ id, created_at: "2026-11-30T12:00:00Z" });

describe("trigger secrets", () => {
  it("rotates while one is active and retires while two are", () => {
    expect(secretActions({ secrets: [secret("a")] })).toMatchObject({ canRotate: true, canRetire: false, newestId: "a" });
    expect(secretActions({ secrets: [secret("a"), secret("b")] })).toMatchObject({ canRotate: false, canRetire: true, newestId: "b" });
  });

  it("builds the URL from the page's origin", () => {
    const url = hookUrl("http://127.0.0.1:8080/", { hook_path: "/api/v1/hooks/trg_1" });
    expect(url).toBe("http://127.0.0.1:8080/api/v1/hooks/trg_1");
    expect(exampleCall(url, { auth: "bearer" })).toContain("Authorization: Bearer $SECRET");
    expect(exampleCall(url, { auth: "hmac" })).toContain("X-Aob-Signature");
  });
});

const delivery = (event_id: string, status: Delivery["status"], attempt: number, code: number | null, error: string | null = null): Delivery => ({
  id: attempt,
  event_id,
  event_type: "test",
  run_id: null,
  attempt,
  status,
  response_code: code,
  error,
  created_at: "2026-11-30T12:00:00Z",
});

describe("deliveries", () => {
  it("counts attempts per status in a fixed order", () => {
    const items = [delivery("t", "delivered", 3, 200), delivery("t", "retrying", 2, 500), delivery("r", "failed", 1, null), delivery("t", "retrying", 1, 500)];
    expect(deliveryCounts(items)).toBe("1 delivered · 2 retrying · 1 failed");
    expect(deliveryCounts([])).toBe("");
  });

  it("follows a test event from queued to delivered or failed", () => {
    expect(testState([], "t").state).toBe("waiting");
    expect(testState([delivery("t", "retrying", 1, 500, "HTTP 500: boom")], "t")).toEqual({
      state: "retrying",
      detail: "attempt 1 failed (HTTP 500): HTTP 500: boom; retrying",
    });
    const done = testState([delivery("t", "delivered", 2, 204), delivery("t", "retrying", 1, 500)], "t");
    expect(done).toEqual({ state: "delivered", detail: "delivered on attempt 2 (HTTP 204)" });
    expect(testState([delivery("t", "failed", 1, null, "refused")], "t").detail).toBe("failed: refused");
    expect(testState([delivery("other", "delivered", 1, 200)], "t").state).toBe("waiting");
  });
});

describe("roles", () => {
  it("grants as common/roles.py does", () => {
    expect(allows("admin", "admin")).toBe(true);
    expect(allows("editor", "admin")).toBe(false);
    expect(allows("editor", "write")).toBe(true);
    expect(allows("approver", "write")).toBe(false);
    expect(allows("viewer", "read")).toBe(true);
    expect(allows(null, "read")).toBe(false);
  });
});
