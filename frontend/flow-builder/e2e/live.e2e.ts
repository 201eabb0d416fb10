// A run watched live: log lines stream into the node's panel while it runs (100,000 of them stay responsive),
// a runtime patch adds nodes that appear on the canvas, the patch timeline steps base → patch 1, and the
// patched run succeeds once approved in the UI.
//
// The agent worker was not ready when this was written, so the test plays its part through the same public
// paths it uses: the patch goes through POST /api/v1/runs/{id}/patch, and log events are appended to the
// run's event stream exactly as the worker appends them.
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { appendLogEvents, call, launch, login, openPage, shot, type Watched } from "./browser";

let browser: Browser;
let watched: Watched;
let page: Page;
let runId: string;

const definition = {
  nodes: [
    { id: "work", type: "delay", config: { seconds: 10 } },
    { id: "review", type: "hitl", config: { title: "Continue with the extra steps?", allow_self_approval: true } },
    { id: "done", type: "noop" },
  ],
  edges: [
    { from: "work", to: "done" },
    { from: "review", to: "done", branch: "approved" },
  ],
};

beforeAll(async () => {
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
  await call("POST", "/api/v1/workflows", { name: "live-patch", definition });
  runId = (await call<{ id: string }>("POST", "/api/v1/runs", { workflow_id: "live-patch", inputs: {} })).id;
  await login(page);
  const { api } = inject("stack");
  await page.goto(`${api}/#/runs/${runId}`);
});

afterAll(async () => {
  await browser?.close();
});

test("log lines appear in the node's panel while it runs", async () => {
  await page.waitForSelector("[data-testid=node-review][data-status=waiting]", { timeout: 20_000 });
  await page.click("[data-testid=node-work]");
  await page.click("[data-testid=logs-tab]");
  await page.waitForSelector("[data-testid=log-empty]");
  appendLogEvents(runId, "work", 25, "agent step");
  await expect.poll(() => page.textContent("[data-testid=log-count]")).toBe("25 lines");
  expect(await page.getAttribute("[data-testid=node-work]", "data-status")).not.toBe("succeeded");
  await expect.poll(() => page.locator(".log .line").last().textContent()).toBe("agent step 25");
  await shot(page, "09-log-panel-live");
});

test("nodes on the canvas stay visible while live events re-render the run", async () => {
  // React Flow hides a node whose size it does not know; a canvas rebuilt per event without the measured sizes
  // hid every node until re-measured, and a lost re-measure left nodes unclickable (a flaky CI failure).
  await page.evaluate(() => {
    const seen = { hidden: 0 };
    (window as unknown as { __hiddenNodes: typeof seen }).__hiddenNodes = seen;
    const observer = new MutationObserver((records) => {
      for (const record of records) {
        const node = record.target as HTMLElement;
        if (node.classList.contains("react-flow__node") && node.style.visibility === "hidden") seen.hidden += 1;
      }
    });
    observer.observe(document.querySelector("[data-testid=run-canvas]") as HTMLElement, {
      attributes: true,
      attributeFilter: ["style"],
      subtree: true,
    });
  });
  for (let burst = 0; burst < 5; burst += 1) {
    appendLogEvents(runId, "work", 5, "re-render");
    await page.waitForTimeout(100);
  }
  await expect.poll(() => page.textContent("[data-testid=log-count]")).toBe("50 lines");
  expect(await page.evaluate(() => (window as unknown as { __hiddenNodes: { hidden: number } }).__hiddenNodes.hidden)).toBe(0);
  await expect(page.locator("[data-testid=node-review]").isVisible()).resolves.toBe(true);
});

test("a runtime patch adds nodes that appear on the canvas; the timeline steps through it", async () => {
  const ops = [
    { op: "add", path: "/nodes/-", value: { id: "notify", type: "transform", config: { output: { sent: true } } } },
    { op: "add", path: "/nodes/-", value: { id: "audit", type: "noop" } },
    { op: "add", path: "/edges/-", value: { from: "review", to: "notify", branch: "approved" } },
    { op: "add", path: "/edges/-", value: { from: "notify", to: "audit" } },
  ];
  await call("POST", `/api/v1/runs/${runId}/patch`, { ops, reason: "add a notification" });
  await page.waitForSelector("[data-testid=node-notify].patched", { timeout: 15_000 });
  await page.waitForSelector("[data-testid=node-audit].patched");
  await page.click(".react-flow__pane", { position: { x: 20, y: 20 } });
  await expect.poll(() => page.textContent("[data-testid=run-summary]")).toMatch(/added notify, audit/);
  await shot(page, "10-patch-added-nodes");

  await page.click("[data-testid=patch-timeline] >> text=base");
  await expect.poll(() => page.locator("[data-testid=node-notify]").count()).toBe(0);
  await page.click("[data-testid=patch-timeline] >> text=patch 1");
  await page.waitForSelector("[data-testid=node-notify].patched");
  await expect.poll(() => page.textContent("[data-testid=patch-detail]")).toMatch(/by key:.*add \/nodes\/-/);
  await shot(page, "11-patch-timeline");
  await page.click("[data-testid=patch-timeline] >> text=live");
});

test("100,000 log lines stay responsive in a virtualised list, truncation marked", async () => {
  appendLogEvents(runId, "work", 99_950, "bulk line", true);
  await page.click("[data-testid=node-work]");
  await page.click("[data-testid=logs-tab]");
  await expect.poll(() => page.textContent("[data-testid=log-count]"), { timeout: 60_000, interval: 500 }).toBe("100,000 lines");
  await page.waitForSelector("[data-testid=log-truncated]");
  expect(await page.locator(".log .line").count()).toBeLessThan(200);
  // Jumping to the top and back renders within a frame or two.
  const ms = await page.evaluate(async () => {
    const log = document.querySelector("[data-testid=log]") as HTMLElement;
    const started = performance.now();
    log.scrollTop = 0;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    log.scrollTop = log.scrollHeight / 2;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - started;
  });
  expect(ms).toBeLessThan(500);
  await expect.poll(() => page.locator(".log .line").first().textContent()).toMatch(/bulk line \d+/);
  await shot(page, "12-log-100k-lines");
});

test("approving in the node panel lets the patched run succeed", async () => {
  await page.click("[data-testid=node-review]");
  await page.click("text=Detail");
  const card = page.locator("[data-testid=node-detail] [data-testid^=approval-]");
  await card.locator("textarea").fill("go ahead");
  await card.locator("text=Approve").click();
  await expect.poll(() => page.locator("[data-testid=approval-badge-review]").count()).toBe(0);
  await expect.poll(() => page.textContent("[data-testid=run-status]"), { timeout: 30_000 }).toBe("succeeded");
  for (const id of ["work", "review", "notify", "audit", "done"]) {
    expect(await page.getAttribute(`[data-testid=node-${id}]`, "data-status")).toBe("succeeded");
  }
  await shot(page, "13-patched-run-succeeded");
  expect(watched.errors).toEqual([]);
});
