import { describe, expect, it } from "vitest";
import { apiFieldErrors, describeTiming, EMPTY_DRAFT, relativeTime, scheduleBody } from "./scheduleForm";

describe("scheduleBody", () => {
  it("turns an interval in minutes into seconds", () => {
    const parsed = scheduleBody("nightly", { ...EMPTY_DRAFT, every: "5", unit: "min", inputs: '{"city": "Oslo"}' });
    expect(parsed).toEqual({
      ok: true,
      value: { workflow: "nightly", interval_s: 300, inputs: { city: "Oslo" }, overlap: "skip", paused: false },
    });
  });

  it("sends a cron expression with its time zone and no interval", () => {
    const parsed = scheduleBody("w", { ...EMPTY_DRAFT, mode: "cron", cron: " 0 6 * * 1-5 ", timezone: "Europe/Paris" });
    expect(parsed.ok && parsed.value).toMatchObject({ cron: "0 6 * * 1-5", timezone: "Europe/Paris" });
    expect(parsed.ok && "interval_s" in parsed.value).toBe(false);
  });

  it("names every field that is wrong", () => {
    const parsed = scheduleBody("w", { ...EMPTY_DRAFT, every: "1.5", inputs: "[1]" });
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && Object.keys(parsed.errors).sort()).toEqual(["every", "inputs"]);
    const cron = scheduleBody("w", { ...EMPTY_DRAFT, mode: "cron", cron: "* *", timezone: " ", inputs: "{" });
    expect(!cron.ok && Object.keys(cron.errors).sort()).toEqual(["cron", "inputs", "timezone"]);
  });

  it("takes cron nicknames", () => {
    expect(scheduleBody("w", { ...EMPTY_DRAFT, mode: "cron", cron: "@hourly" }).ok).toBe(true);
  });
});

describe("apiFieldErrors", () => {
  it("pins API details to their fields and keeps the rest for the form", () => {
    const errors = apiFieldErrors([
      { path: "body.cron", message: "expected a cron expression" },
      { path: "body.inputs.city", message: "required" },
      { path: "body.inputs", message: "not an object" },
      { path: "body", message: "expected exactly one of 'cron' and 'interval_s'" },
      "junk",
    ]);
    expect(errors).toEqual({
      cron: "expected a cron expression",
      inputs: "required; not an object",
      form: "expected exactly one of 'cron' and 'interval_s'",
    });
    expect(apiFieldErrors(null)).toEqual({});
  });
});

describe("describeTiming and relativeTime", () => {
  it("reads intervals in the largest units and cron with its zone", () => {
    expect(describeTiming({ interval_s: 5, cron: null, timezone: "UTC" })).toBe("every 5 s");
    expect(describeTiming({ interval_s: 5400, cron: null, timezone: "UTC" })).toBe("every 1 h 30 min");
    expect(describeTiming({ interval_s: null, cron: "0 6 * * *", timezone: "Europe/Oslo" })).toBe("cron 0 6 * * * (Europe/Oslo)");
  });

  it("says how far a time is, either way", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    expect(relativeTime("2026-11-30T12:00:04Z", now)).toBe("in 4 s");
    expect(relativeTime("2026-11-30T11:57:00Z", now)).toBe("3 min ago");
    expect(relativeTime("2026-11-30T14:00:00Z", now)).toBe("in 2 h");
    expect(relativeTime("2026-12-03T12:00:00Z", now)).toBe("in 3 d");
    expect(relativeTime("2026-11-30T12:00:00.200Z", now)).toBe("now");
  });
});
