// Build a 4-node workflow with a hitl node by drag and drop, validate, save two versions and compare them,
// run it, approve in the UI and see the run succeed.
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { launch, login, openPage, shot, type Watched } from "./browser";

let browser: Browser;
let watched: Watched;
let page: Page;

beforeAll(async () => {
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
});

afterAll(async () => {
  await browser?.close();
});

async function drop(type: string, x: number, y: number): Promise<void> {
  await page.dragAndDrop(`[data-testid=palette-${type}]`, "[data-testid=canvas]", { targetPosition: { x, y } });
}

async function select(id: string): Promise<void> {
  await page.click(`[data-testid=node-${id}]`);
}

async function rename(from: string, to: string): Promise<void> {
  await select(from);
  await page.fill("#node-id", to);
  await page.press("#node-id", "Enter");
  await page.waitForSelector(`[data-testid=node-${to}]`);
}

async function connect(from: string, to: string): Promise<void> {
  const source = await page.locator(`.react-flow__node[data-id="${from}"] .react-flow__handle.source`).boundingBox();
  const target = await page.locator(`.react-flow__node[data-id="${to}"] .react-flow__handle.target`).boundingBox();
  if (!source || !target) throw new Error(`no handles to connect ${from} -> ${to}`);
  await page.mouse.move(source.x + source.width / 2, source.y + source.height / 2);
  await page.mouse.down();
  await page.mouse.move(target.x + target.width / 2, target.y + target.height / 2, { steps: 8 });
  await page.mouse.up();
}

async function clickPane(): Promise<void> {
  await page.click(".react-flow__pane", { position: { x: 30, y: 30 } });
}

test("a wrong key gets a clear 401 message; the admin key logs in", async () => {
  const { api } = inject("stack");
  await page.goto(api + "/");
  await page.fill("#api-key", "aob_not_a_key");
  await page.click("button[type=submit]");
  await expect.poll(() => page.textContent("[role=alert]")).toMatch(/401/);
  await shot(page, "01-login-error");
  // The refused request is logged by the browser itself; only errors after logging in count.
  watched.errors.length = 0;
  await login(page);
  await page.waitForSelector("[data-testid=palette-hitl]");
});

test("build by drag and drop, validate live, delete by keyboard, save, compare versions", async () => {
  await drop("transform", 140, 120);
  await drop("hitl", 400, 120);
  await drop("transform", 680, 60);
  await drop("noop", 680, 240);
  await rename("transform", "prepare");
  await rename("hitl", "review");
  await rename("transform_2", "publish");
  await rename("noop", "discard");

  await select("prepare");
  await page.fill("#config-prepare-output", '{"greeting": "Hello, {{ inputs.who }}"}');
  await select("review");
  await page.fill("#config-review-title", "Publish the greeting?");
  await page.check("#config-review-allow_self_approval");
  await select("publish");
  await page.fill("#config-publish-output", '{"published": "{{ nodes.prepare.output.greeting }}"}');

  await connect("prepare", "review");
  await connect("review", "publish");
  await connect("review", "discard");
  await expect.poll(() => page.locator(".react-flow__edge").count()).toBe(3);
  await expect.poll(() => page.locator(".react-flow__edge-text").allTextContents()).toEqual(["approved", "rejected"]);

  await clickPane();
  await page.fill("#wf-inputs", '{"type": "object", "properties": {"who": {"type": "string"}}, "required": ["who"]}');
  await page.fill("[aria-label='workflow name']", "greet-approve");
  await expect.poll(() => page.textContent("[data-testid=validity]")).toBe("valid");

  // An error is pinned to the node it concerns, live.
  await select("review");
  await page.fill("#config-review-title", "");
  await expect.poll(() => page.textContent("[data-testid=validity]")).toMatch(/error/);
  await expect.poll(() => page.getAttribute("[data-testid=node-review]", "class")).toMatch(/has-errors/);
  await expect.poll(() => page.textContent("[data-testid=pinned-errors]")).toMatch(/nodes\[1\]\.config\.title/);
  await shot(page, "02-builder-validation-error");
  await page.fill("#config-review-title", "Publish the greeting?");
  await expect.poll(() => page.textContent("[data-testid=validity]")).toBe("valid");

  // Keyboard delete.
  await drop("noop", 400, 320);
  await select("noop");
  await page.keyboard.press("Delete");
  await expect.poll(() => page.locator("[data-testid=node-noop]").count()).toBe(0);

  await clickPane();
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect.poll(() => page.textContent("[role=status]")).toMatch(/version 1/);
  await shot(page, "03-builder-saved");

  await select("publish");
  await page.fill("#config-publish-output", '{"published": "{{ nodes.prepare.output.greeting }}", "by": "ui"}');
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect.poll(() => page.textContent("[role=status]")).toMatch(/version 2/);

  await page.getByRole("button", { name: "Versions", exact: true }).click();
  await page.click("[data-testid=versions-panel] >> text=Compare");
  await expect.poll(() => page.textContent("[data-testid=comparison]")).toMatch(/publish changed: config\.output\.by/);
  await expect.poll(() => page.getAttribute("[data-testid=node-publish]", "class")).toMatch(/diff-changed/);
  await shot(page, "04-versions-compare");
  await page.click("text=Back to editing");
  await page.getByRole("button", { name: "Versions", exact: true }).click();
  expect(watched.errors).toEqual([]);
});

test("run with inputs, approve in the UI, the run succeeds", async () => {
  await page.click("text=Run…");
  await page.fill("#run-input-who", "Ada");
  await shot(page, "05-run-inputs");
  await page.click("text=Start run");
  await page.waitForURL(/#\/runs\//);
  await page.waitForSelector("[data-testid=node-review][data-status=waiting]", { timeout: 20_000 });
  await page.waitForSelector("[data-testid=approval-badge-review]");
  await expect.poll(() => page.textContent("[data-testid=approvals-count]")).toBe("1");
  await shot(page, "06-run-waiting-for-approval");

  const card = page.locator("[data-testid=run-summary] [data-testid^=approval-]");
  await card.locator("textarea").fill("looks good");
  await card.locator("text=Approve").click();
  // Gone everywhere at once: the card, the badge on the node and the count in the header.
  await expect.poll(() => page.locator("[data-testid^=approval-]").count()).toBe(0);
  await expect.poll(() => page.locator("[data-testid=approvals-count]").count()).toBe(0);
  await expect.poll(() => page.textContent("[data-testid=run-status]"), { timeout: 20_000 }).toBe("succeeded");
  expect(await page.getAttribute("[data-testid=node-publish]", "data-status")).toBe("succeeded");
  expect(await page.getAttribute("[data-testid=node-discard]", "data-status")).toBe("skipped");
  await select("publish");
  await expect.poll(() => page.textContent("[data-testid=node-detail]")).toMatch(/Hello, Ada/);
  await shot(page, "07-run-succeeded");

  await page.click("text=Runs");
  await page.waitForSelector("[data-testid=runs-list] >> text=greet-approve");
  await expect.poll(() => page.textContent("[data-testid=runs-list]")).toMatch(/succeeded/);
  await shot(page, "08-runs-list");
  expect(watched.errors).toEqual([]);
});
