// Runs as a daily tool: a failed run resumed from its failed node after editing an input, and succeeding; the
// runs page filtered, searched, paged and kept live; approvals pushed from the tenant feed (no polling) with a
// desktop notification once the user opted in.
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage, shot, type Watched } from "./browser";

let browser: Browser;
let watched: Watched;
let page: Page;

type Run = { id: string; status: string; inputs: Record<string, unknown>; nodes: Record<string, { output?: unknown }> };

const divide = {
  inputs: {
    type: "object",
    properties: { total: { type: "integer" }, parts: { type: "integer" } },
    required: ["total", "parts"],
  },
  nodes: [
    { id: "start", type: "noop" },
    { id: "share", type: "transform", config: { output: "{{ inputs.total // inputs.parts }}" } },
    { id: "done", type: "noop" },
  ],
  edges: [
    { from: "start", to: "share" },
    { from: "share", to: "done" },
  ],
};

beforeAll(async () => {
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
  const { api } = inject("stack");
  await page.context().grantPermissions(["notifications"], { origin: api });
  // Records every desktop notification the page shows (headless Chromium displays none).
  await page.addInitScript(() => {
    const shown: { title: string; body?: string }[] = [];
    (window as unknown as { __notifications: typeof shown }).__notifications = shown;
    const Original = window.Notification;
    class Recorded extends Original {
      constructor(title: string, options?: NotificationOptions) {
        shown.push({ title, body: options?.body });
        super(title, options);
      }
    }
    window.Notification = Recorded as typeof Notification;
  });
  await call("POST", "/api/v1/workflows", { name: "divide", definition: divide });
  await login(page);
});

afterAll(async () => {
  await browser?.close();
});

async function waitRun(runId: string, status: string): Promise<Run> {
  let run: Run | null = null;
  await expect
    .poll(async () => (run = await call<Run>("GET", `/api/v1/runs/${runId}`)).status, { timeout: 20_000 })
    .toBe(status);
  return run as unknown as Run;
}

/** The run view's status, then (to say what went wrong when they differ) its stream's and the API's. */
async function shownStatus(runId: string): Promise<string> {
  const api = (await call<Run>("GET", `/api/v1/runs/${runId}`)).status;
  return `${await page.textContent("[data-testid=run-status]")} (${await page.textContent("[data-testid=socket-status]")}; api: ${api})`;
}

async function rowCount(): Promise<number> {
  return page.locator("[data-testid=runs-list] tbody tr").count();
}

test("a failed run resumed from its failed node with an edited input succeeds", async () => {
  const { api } = inject("stack");
  const run = await call<Run>("POST", "/api/v1/runs", { workflow_id: "divide", inputs: { total: 100, parts: 0 } });
  await page.goto(`${api}/#/runs/${run.id}`);
  await expect.poll(() => shownStatus(run.id), { timeout: 20_000 }).toMatch(/^failed /);
  await page.click("[data-testid=node-share]");
  const failed = page.locator("[data-testid=node-attempts] [data-testid=attempt-0-1]");
  await expect.poll(() => failed.textContent()).toMatch(/failed[\s\S]*division/i);
  await shot(page, "resume-1-failed-node-attempts");

  await page.click("[data-testid=resume-from-node]");
  const dialog = page.getByRole("dialog", { name: "resume the run" });
  await expect.poll(() => dialog.locator("#resume-from").inputValue()).toBe("share");
  expect(await dialog.locator("#resume-input-total").inputValue()).toBe("100");
  await dialog.locator("#resume-input-parts").fill("4");
  await dialog.getByRole("status").waitFor();
  await shot(page, "resume-2-edited-inputs");
  await dialog.locator("[data-testid=resume-submit]").click();
  await dialog.waitFor({ state: "detached" });

  await expect.poll(() => shownStatus(run.id), { timeout: 20_000 }).toMatch(/^succeeded /);
  await page.click("[data-testid=node-share]");
  const resumed = page.locator("[data-testid=node-attempts] [data-testid=attempt-1-2]");
  await expect.poll(() => resumed.textContent()).toMatch(/after resume 1[\s\S]*succeeded/);
  expect(await page.locator("[data-testid=node-attempts] li").count()).toBe(2);
  await page.click("[data-testid=timeline-toggle]");
  await page.waitForSelector("[data-testid=bar-share-1-2]");
  expect(await page.locator("[data-testid=run-timeline] .gantt-row").count()).toBe(3);
  expect(await page.getAttribute("[data-testid=bar-share-0-1]", "aria-label")).toMatch(/share attempt 1: failed/);
  await shot(page, "resume-3-succeeded-timeline");

  const ended = await waitRun(run.id, "succeeded");
  expect(ended.nodes.share.output).toBe(25);
  await expect.poll(async () => (await call<Run>("GET", `/api/v1/runs/${run.id}`)).inputs).toEqual({ total: 100, parts: 4 });
  expect(watched.errors).toEqual([]);
});

test("child runs of a map node are one click away, and link back; run again starts a new run", async () => {
  const { api } = inject("stack");
  const fanOut = {
    inputs: { type: "object", properties: { totals: { type: "array", items: { type: "integer" } } } },
    nodes: [{ id: "each", type: "map", config: { items: "{{ inputs.totals }}", body: "divide", inputs: { total: "{{ item }}", parts: 2 } } }],
    edges: [],
  };
  await call("POST", "/api/v1/workflows", { name: "fan-out", definition: fanOut });
  const run = await call<Run>("POST", "/api/v1/runs", { workflow_id: "fan-out", inputs: { totals: [10, 30] } });
  await page.goto(`${api}/#/runs/${run.id}`);
  await expect.poll(() => page.textContent("[data-testid=run-status]"), { timeout: 20_000 }).toBe("succeeded");
  const children = page.locator("[data-testid=run-summary] [data-testid=child-runs] li");
  await expect.poll(() => children.count()).toBe(2);
  await page.click("[data-testid=node-each]");
  await expect.poll(() => page.locator("[data-testid=node-detail] [data-testid=child-runs] li").count()).toBe(2);
  await shot(page, "run-child-runs");

  await page.locator("[data-testid=node-detail] [data-testid=child-runs] a").first().click();
  // The child run's view draws its definition (recorded as its IR) and says which run started it.
  await page.waitForSelector("[data-testid=node-share]");
  await expect.poll(() => page.textContent("[data-testid=run-status]")).toBe("succeeded");
  await page.click(`[data-testid=parent-run]`);
  await page.waitForSelector("[data-testid=node-each]");

  await page.click("[data-testid=run-again]");
  const dialog = page.getByRole("dialog", { name: "run again" });
  await dialog.locator("#again-input-totals").fill("4, 8, 12");
  await dialog.locator("[data-testid=again-submit]").click();
  await expect.poll(() => page.url()).not.toContain(run.id);
  const againId = decodeURIComponent(page.url().split("#/runs/")[1]);
  const again = await waitRun(againId, "succeeded");
  expect(again.inputs).toEqual({ totals: [4, 8, 12] });
  await expect.poll(() => page.locator("[data-testid=run-summary] [data-testid=child-runs] li").count(), { timeout: 20_000 }).toBe(3);
  expect(watched.errors).toEqual([]);
});

test("the runs page filters, searches, pages and stays live", async () => {
  const { api } = inject("stack");
  await call("POST", "/api/v1/workflows", { name: "nightly-load", definition: { nodes: [{ id: "n", type: "noop" }] } });
  const loads: string[] = [];
  for (let i = 0; i < 27; i += 1) {
    loads.push((await call<Run>("POST", "/api/v1/runs", { workflow_id: "nightly-load", inputs: {} })).id);
  }
  const bad = await call<Run>("POST", "/api/v1/runs", { workflow_id: "divide", inputs: { total: 1, parts: 0 } });
  await waitRun(bad.id, "failed");
  await waitRun(loads[26], "succeeded");

  await page.goto(`${api}/#/runs`);
  await page.getByRole("search", { name: "filter runs" }).waitFor();
  await page.fill("#runs-workflow", "nightly-load");
  await expect.poll(rowCount).toBe(25);
  await expect.poll(() => page.locator("[data-testid=runs-list] tbody tr").first().getAttribute("data-testid")).toBe(
    `run-row-${loads[26]}`,
  );
  await page.click("[data-testid=runs-older]");
  await expect.poll(rowCount).toBe(2);
  expect(await page.textContent("[data-testid=runs-page]")).toBe("page 2");
  await shot(page, "runs-2-paging");
  await page.click("[data-testid=runs-newer]");
  await expect.poll(rowCount).toBe(25);

  await page.fill("#runs-workflow", "divide");
  await page.getByRole("checkbox", { name: "failed" }).check();
  await expect.poll(() => page.locator(`[data-testid=run-row-${bad.id}]`).count()).toBe(1);
  const statuses = await page.locator("[data-testid=run-row-status]").allTextContents();
  expect(new Set(statuses)).toEqual(new Set(["failed"]));
  await page.fill("#runs-search", bad.id.slice(0, 10));
  await expect.poll(rowCount).toBe(1);
  await shot(page, "runs-1-filters");

  // Live: a new run of the filtered workflow appears on the first page without reloading it.
  await page.click("text=Clear filters");
  await page.fill("#runs-workflow", "nightly-load");
  await expect.poll(rowCount).toBe(25);
  const fresh = await call<Run>("POST", "/api/v1/runs", { workflow_id: "nightly-load", inputs: {} });
  const freshRow = page.locator(`[data-testid=run-row-${fresh.id}]`);
  await expect.poll(() => freshRow.count(), { timeout: 15_000 }).toBe(1);
  await expect.poll(() => freshRow.locator("[data-testid=run-row-status]").textContent(), { timeout: 15_000 }).toBe("succeeded");
  expect(watched.errors).toEqual([]);
});

test("approvals arrive from the tenant feed without polling, with a desktop notification", async () => {
  const { api } = inject("stack");
  const gate = {
    nodes: [{ id: "gate", type: "hitl", config: { title: "Release to production?", allow_self_approval: true } }],
    edges: [],
  };
  await call("POST", "/api/v1/workflows", { name: "release-gate", definition: gate });
  const approvalReads: string[] = [];
  page.on("request", (request) => {
    if (request.url().includes("/api/v1/approvals")) approvalReads.push(request.url());
  });
  await page.goto(`${api}/#/approvals`);
  await page.waitForSelector("[data-testid=notify-opt-in]");
  // Other browser tests share the stack: count from what is pending now.
  const pendingBefore = (await call<{ items: unknown[] }>("GET", "/api/v1/approvals?status=pending&limit=200")).items.length;
  await page.click("[data-testid=notify-opt-in]");
  await expect.poll(() => page.getAttribute("[data-testid=notify-state]", "data-state")).toBe("on");
  const readsBefore = approvalReads.length;

  const run = await call<Run>("POST", "/api/v1/runs", { workflow_id: "release-gate", inputs: {} });
  const card = page.locator("[data-testid^=approval-]", { hasText: "Release to production?" });
  await card.waitFor({ timeout: 20_000 });
  expect(await card.textContent()).toContain(run.id);
  await expect.poll(() => page.textContent("[data-testid=approvals-count]")).toBe(String(pendingBefore + 1));
  const shown = await page.evaluate(() => (window as unknown as { __notifications: { title: string; body?: string }[] }).__notifications);
  expect(shown).toEqual([{ title: "Approval needed: Release to production?", body: `run ${run.id} · node gate` }]);
  await shot(page, "approvals-pushed");
  // Nothing asked for the list while the approval arrived, nor in the seconds after: no polling.
  await page.waitForTimeout(3000);
  expect(approvalReads.slice(readsBefore)).toEqual([]);

  await card.getByRole("button", { name: "Approve" }).click();
  await card.waitFor({ state: "detached" });
  await waitRun(run.id, "succeeded");
  expect(approvalReads.slice(readsBefore).every((url) => url.includes("/decide"))).toBe(true);
  expect(watched.errors).toEqual([]);
});
