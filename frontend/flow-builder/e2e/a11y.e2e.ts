// Accessibility: axe-core (injected from its npm package) runs on every page and state of the app listed in
// PAGES, and any `serious` or `critical` violation fails the test, naming the rule and the elements.
// A new page is one more line in PAGES: where it is, what shows it is ready, and optionally what to do first.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage, type Watched } from "./browser";

type Context = { runId: string };
type Check = {
  name: string;
  /** The hash route, or a function of what beforeAll set up. */
  path: string | ((context: Context) => string);
  /** A selector that is there once the page has loaded what it shows. */
  ready: string;
  /** What to do on the page before checking (open a dialog, select a node)... */
  act?: (page: Page) => Promise<unknown>;
  /** ...and what shows it was done. */
  shows?: string;
};

const click = (selector: string) => (page: Page) => page.click(selector);
const press = (key: string) => (page: Page) => page.keyboard.press(key);
const WF = "#/builder/a11y-review";
const RUN = (c: Context) => `#/runs/${c.runId}`;
const NODE = "[data-testid=node-review]";
const WAITING = "[data-testid=node-review][data-status=waiting]";

export const PAGES: Check[] = [
  { name: "builder, new workflow", path: "#/builder/new", ready: "[data-testid=palette-hitl]" },
  { name: "builder, a workflow", path: WF, ready: NODE },
  { name: "builder, node editor", path: WF, ready: NODE, act: click(NODE), shows: "[data-testid=node-editor]" },
  { name: "builder, edge editor", path: WF, ready: NODE, act: async (page) => (await page.focus(".react-flow__edge"), await page.keyboard.press("Enter")), shows: "[data-testid=edge-editor]" },
  { name: "builder, nodes selected", path: WF, ready: NODE, act: press("Control+A"), shows: "[data-testid=selection-editor]" },
  { name: "builder, workflow picker open", path: WF, ready: NODE, act: click("[aria-label='show workflows']"), shows: "[role=option]" },
  { name: "builder, shortcut help", path: WF, ready: NODE, act: press("?"), shows: "[data-testid=shortcut-help]" },
  { name: "builder, versions", path: WF, ready: NODE, act: click("text=Versions"), shows: "[data-testid=versions-panel] >> text=Compare" },
  { name: "builder, run dialog", path: WF, ready: NODE, act: click("text=Run…"), shows: "#run-input-who" },
  { name: "run view", path: RUN, ready: WAITING },
  { name: "run view, node detail", path: RUN, ready: WAITING, act: click(NODE), shows: "[data-testid=node-detail]" },
  { name: "run view, node log", path: RUN, ready: WAITING, act: async (page) => (await page.click(NODE), await page.click("[data-testid=logs-tab]")), shows: "[data-testid=log-empty]" },
  { name: "runs", path: "#/runs", ready: "[data-testid=runs-list] tbody tr" },
  { name: "approvals", path: "#/approvals", ready: "[data-testid^=approval-]" },
  { name: "schedules and triggers", path: "#/automation", ready: "[data-testid^=trigger-] [data-testid=trigger-url]" },
  { name: "secrets", path: "#/secrets", ready: "[data-testid=secret-A11Y_TOKEN]" },
  { name: "notifications", path: "#/notifications", ready: "[data-testid^=subscription-]" },
  { name: "API keys", path: "#/keys", ready: "[data-testid=key-a11y-viewer]" },
];

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const BLOCKING = new Set(["serious", "critical"]);

type Violation = { id: string; impact: string | null; help: string; nodes: { target: unknown[]; failureSummary?: string }[] };

/** The serious and critical axe violations on ``page`` as it is now, one readable line each. */
async function violations(page: Page): Promise<string[]> {
  // Evaluated through the DevTools protocol: the app's Content-Security-Policy refuses an injected <script>.
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (context: Document, options: object) => Promise<{ violations: Violation[] }> } }).axe;
    return (await axe.run(document, { resultTypes: ["violations"] })).violations;
  });
  return found
    .filter((v) => BLOCKING.has(v.impact ?? ""))
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(" | ")}`);
}

let browser: Browser;
let watched: Watched;
const context: Context = { runId: "" };
const cleanup: string[] = [];

beforeAll(async () => {
  browser = await launch();
  watched = await openPage(browser);
  const definition = {
    inputs: { type: "object", properties: { who: { type: "string" } } },
    nodes: [
      { id: "prepare", type: "transform", config: { output: { greeting: "Hello" } } },
      { id: "review", type: "hitl", config: { title: "Publish?", allow_self_approval: true } },
    ],
    edges: [{ from: "prepare", to: "review" }],
  };
  await call("POST", "/api/v1/workflows", { name: "a11y-review", definition });
  context.runId = (await call<{ id: string }>("POST", "/api/v1/runs", { workflow_id: "a11y-review", inputs: { who: "Ada" } })).id;
  // Something on each admin page, so its lists and cards are checked too; removed again after (other browser
  // tests share the stack and count what is there).
  const made = (path: string, body: unknown) => call<{ id: string }>("POST", path, body);
  const schedule = await made("/api/v1/schedules", { workflow: "a11y-review", cron: "0 3 * * *", inputs: { who: "Ada" }, paused: true });
  const trigger = await made("/api/v1/triggers", { workflow: "a11y-review", name: "a11y-hook", auth: "bearer", paused: true });
  await call("PUT", "/api/v1/secrets/A11Y_TOKEN", { value: "not shown anywhere" });
  const subscription = await made("/api/v1/notifications/subscriptions", { events: ["run_failed"], channel: "email", address: "ops@example.com" });
  const key = await made("/api/v1/api-keys", { name: "a11y-viewer", role: "viewer" });
  cleanup.push(
    `/api/v1/schedules/${schedule.id}`,
    `/api/v1/triggers/${trigger.id}`,
    "/api/v1/secrets/A11Y_TOKEN",
    `/api/v1/notifications/subscriptions/${subscription.id}`,
    `/api/v1/api-keys/${key.id}`,
  );
});

afterAll(async () => {
  await browser?.close();
  const { api, adminKey } = inject("stack");
  // Its approval would stay pending for the browser tests that count pending approvals: cancelling the run
  // cancels it.
  if (context.runId) await call("POST", `/api/v1/runs/${context.runId}/cancel`);
  for (const path of cleanup) {
    const response = await fetch(api + path, { method: "DELETE", headers: { Authorization: `Bearer ${adminKey}` } });
    if (!response.ok) throw new Error(`DELETE ${path}: ${response.status} ${await response.text()}`);
  }
});

test("login page: no serious or critical violations", async () => {
  const { page } = await openPage(browser);
  await page.goto(inject("stack").api + "/");
  await page.waitForSelector("#api-key");
  expect(await violations(page)).toEqual([]);
  await page.fill("#api-key", "aob_not_a_key");
  await page.click("button[type=submit]");
  await page.waitForSelector("[role=alert]");
  expect(await violations(page)).toEqual([]);
});

test.for(PAGES)("$name: no serious or critical violations", async (check) => {
  const { page } = watched;
  if (!(await page.$(".topbar"))) await login(page);
  const path = typeof check.path === "function" ? check.path(context) : check.path;
  // A reload between checks so that each starts from the page as it first shows.
  await page.goto(`${inject("stack").api}/${path}`);
  await page.reload();
  await page.waitForSelector(check.ready, { timeout: 20_000 });
  await check.act?.(page);
  if (check.shows) await page.waitForSelector(check.shows);
  expect(await violations(page)).toEqual([]);
});
