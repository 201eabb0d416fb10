// Schedules and webhook triggers made in the UI: a schedule fires and its runs appear under it, a trigger's URL
// starts runs with its secret, a rotation keeps two secrets valid until the older is retired. Then the API keys
// page: an admin creates a viewer key; logged in with it, the page and its link are refused.
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage, shot, type Watched } from "./browser";

let browser: Browser;
let watched: Watched;
let page: Page;
let workflowId: string;

beforeAll(async () => {
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
  const created = await call<{ id: string }>("POST", "/api/v1/workflows", {
    name: "tick",
    definition: { nodes: [{ id: "say", type: "transform", config: { output: { at: "{{ inputs.at | default('now') }}" } } }], edges: [] },
  });
  workflowId = created.id;
  await login(page);
});

afterAll(async () => {
  await browser?.close();
});

test("a schedule created in the UI fires, its runs appear under it, and it pauses", async () => {
  const { api } = inject("stack");
  await page.goto(`${api}/#/automation/${workflowId}`);
  await page.getByRole("button", { name: "New schedule" }).click();
  await page.fill("#sched-every", "0");
  await page.getByRole("button", { name: "Create schedule" }).click();
  // Refused before asking the API, and said next to the field.
  await expect.poll(() => page.textContent("#sched-every-error")).toMatch(/at least 1/);
  expect(await page.getAttribute("#sched-every", "aria-invalid")).toBe("true");
  await page.fill("#sched-every", "2");
  await page.fill("#sched-inputs", '{"at": "every two seconds"}');
  await page.getByRole("button", { name: "Create schedule" }).click();

  const card = page.getByRole("article", { name: "schedule every 2 s" });
  await card.waitFor();
  await expect.poll(() => card.locator("[data-testid=next-fire-times] li").count()).toBe(5);
  // It fires: a run started by the schedule shows under it, and it succeeds.
  const runs = card.locator("[data-testid^=schedule-runs-] a");
  await expect.poll(() => runs.count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(2);
  await expect.poll(() => card.locator("[data-testid^=schedule-runs-]").textContent(), { timeout: 20_000 }).toMatch(/succeeded/);
  await expect.poll(() => card.textContent()).toMatch(/Last fired: (\d+ s ago|now)/);
  await shot(page, "admin-schedule-firing");

  const runId = (await runs.first().textContent()) ?? "";
  const run = await call<{ status: string; inputs: unknown; schedule_id: string | null }>("GET", `/api/v1/runs/${runId}`);
  expect(run.inputs).toEqual({ at: "every two seconds" });
  expect(run.schedule_id).not.toBeNull();

  await card.getByRole("button", { name: "Pause" }).click();
  await expect.poll(() => card.locator("[data-testid=schedule-state]").textContent()).toBe("paused");
  await expect.poll(() => card.textContent()).toMatch(/None while paused/);
  const schedules = await call<{ items: { paused: boolean; next_fire_times: string[] }[] }>("GET", `/api/v1/schedules?workflow=${workflowId}`);
  expect(schedules.items.map((s) => [s.paused, s.next_fire_times.length])).toEqual([[true, 0]]);
  expect(watched.errors).toEqual([]);
});

async function hook(url: string, secret: string): Promise<number> {
  const response = await fetch(url, {
    method: "POST",
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: JSON.stringify({ at: "hook" }),
  });
  return response.status;
}

test("a webhook trigger: its URL starts runs, a rotation keeps both secrets until the older is retired", async () => {
  await page.fill("#trigger-name", "deploys");
  await page.selectOption("#trigger-auth", "bearer");
  await page.getByRole("button", { name: "Create trigger" }).click();
  const first = (await page.locator("[data-testid=trigger-secret-value]").textContent()) ?? "";
  expect(first.length).toBeGreaterThan(20);
  await page.getByRole("region", { name: /Secret of trigger deploys/ }).getByRole("button", { name: "Done" }).click();
  await expect.poll(() => page.locator("[data-testid=trigger-secret]").count()).toBe(0);
  // Gone for good: the page holds it nowhere any more.
  expect(await page.content()).not.toContain(first);

  const card = page.getByRole("article", { name: "trigger deploys" });
  const url = (await card.locator("[data-testid=trigger-url]").textContent()) ?? "";
  expect(url).toMatch(/\/api\/v1\/hooks\/trg_[0-9a-f]{32}$/);
  expect(await hook(url, first)).toBe(202);
  await expect.poll(() => card.locator("[data-testid^=trigger-runs-] a").count(), { timeout: 20_000 }).toBe(1);

  await card.getByRole("button", { name: "Rotate secret" }).click();
  const second = (await page.locator("[data-testid=trigger-secret-value]").textContent()) ?? "";
  expect(second).not.toBe(first);
  await expect.poll(() => card.locator("[data-testid=trigger-secrets] li").count()).toBe(2);
  expect(await card.getByRole("button", { name: "Rotate secret" }).isDisabled()).toBe(true);
  // Both secrets are accepted while two are active.
  expect(await hook(url, first)).toBe(202);
  expect(await hook(url, second)).toBe(202);
  await expect.poll(() => card.locator("[data-testid^=trigger-runs-] a").count(), { timeout: 20_000 }).toBe(3);
  await card.locator("[data-testid^=trigger-runs-]").scrollIntoViewIfNeeded();
  await shot(page, "admin-trigger-rotation");
  await page.getByRole("region", { name: /Secret of trigger deploys/ }).getByRole("button", { name: "Done" }).click();

  await card.getByRole("button", { name: "Retire older secret" }).click();
  await expect.poll(() => card.locator("[data-testid=trigger-secrets] li").count()).toBe(1);
  expect(await hook(url, first)).toBe(401);
  expect(await hook(url, second)).toBe(202);

  await card.getByRole("button", { name: "Pause" }).click();
  await expect.poll(() => card.locator("[data-testid=trigger-state]").textContent()).toBe("paused");
  expect(await hook(url, second)).toBe(409);
  expect(watched.errors).toEqual([]);
});

test("API keys: an admin creates a viewer key; the viewer is refused the page, its link and the API", async () => {
  const { api } = inject("stack");
  await page.click("text=API keys");
  await page.fill("#key-name", "e2e-viewer");
  await page.fill("#key-owner", "vera");
  await page.selectOption("#key-role", "viewer");
  await page.getByRole("button", { name: "Create key" }).click();
  const key = (await page.locator("[data-testid=new-key-value]").textContent()) ?? "";
  expect(key).toMatch(/^aob_/);
  await expect.poll(() => page.textContent("[data-testid=key-e2e-viewer]")).toMatch(/vera.*viewer.*active/);
  await shot(page, "admin-api-keys");
  await page.getByRole("region", { name: /Key e2e-viewer/ }).getByRole("button", { name: "Done" }).click();
  expect(await page.content()).not.toContain(key);
  expect(watched.errors).toEqual([]);

  const viewer = await openPage(browser);
  await viewer.page.goto(api + "/");
  await viewer.page.fill("#api-key", key);
  await viewer.page.click("button[type=submit]");
  await viewer.page.waitForSelector(".topbar");
  await viewer.page.waitForSelector("text=Notifications");
  expect(await viewer.page.locator(".topbar nav >> text=API keys").count()).toBe(0);
  await viewer.page.goto(`${api}/#/keys`);
  await expect.poll(() => viewer.page.textContent("[data-testid=keys-refused]")).toMatch(/Only admins manage API keys.*viewer/);
  await shot(viewer.page, "admin-api-keys-refused-viewer");
  const refused = await fetch(`${api}/api/v1/api-keys`, { headers: { Authorization: `Bearer ${key}` } });
  expect(refused.status).toBe(403);
  // The viewer sees secret names but no way to set or delete one.
  await viewer.page.goto(`${api}/#/secrets`);
  await viewer.page.waitForSelector("[data-testid=secrets-list]");
  expect(await viewer.page.locator("#secret-value").count()).toBe(0);
  expect(viewer.errors).toEqual([]);
  await viewer.page.context().close();

  // Revoked, the key stops working at once.
  await page.getByRole("button", { name: "Revoke e2e-viewer" }).click();
  await page.getByRole("button", { name: "Revoke e2e-viewer now" }).click();
  await expect.poll(() => page.textContent("[data-testid=key-e2e-viewer]")).toMatch(/revoked/);
  expect((await fetch(`${api}/api/v1/me`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(401);
  expect(watched.errors).toEqual([]);
});
