// The UI benchmark (`npm run bench:ui`, also run by `make bench`): the builder with a 500-node workflow and the
// run view of a 1,000-node run, in headless Chromium against a real `aob up` stack. It prints time to first
// render, time to apply 1,000 edits (builder) or 1,000 live events (run view), and long tasks and frame gaps
// meanwhile, then appends a section to docs/benchmarks.md. Figures only: nothing here asserts a duration.
import { execFileSync } from "node:child_process";
import { appendFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage } from "../e2e/browser";
import { REPO } from "../e2e/stack";
import { framesUntil, startProbe, stopProbe, type Responsiveness } from "./probe";

const BUILDER_NODES = 500;
const RUN_NODES = 1_000;
const EVENTS = Number(process.env.AOB_BENCH_UI_EVENTS ?? 1_000);
const REPORT = process.env.AOB_BENCH_REPORT ?? join(REPO, "docs/benchmarks.md");

type Row = { scenario: string; firstRenderMs: number; applyMs: number; what: string; during: Responsiveness };
const rows: Row[] = [];
const extra: Record<string, number> = {};

let browser: Browser;
let page: Page;

/** A grid of ``count`` nodes, each row a chain; positions stored, as the builder saves them. */
function gridDefinition(count: number, first?: { id: string; type: string; config: Record<string, unknown> }) {
  const columns = 25;
  const nodes = Array.from({ length: count }, (_, i) => ({
    id: `n${i}`,
    type: "noop",
    metadata: { ui: { x: (i % columns) * 260, y: Math.floor(i / columns) * 110 } },
  }));
  if (first) Object.assign(nodes[0], first);
  const edges = nodes.slice(1).map((node, i) => ({ from: first && i >= columns - 1 ? nodes[0].id : nodes[i].id, to: node.id }));
  return { nodes, edges: first ? edges : edges.filter((_, i) => (i + 1) % columns !== 0) };
}

const round = (ms: number) => Math.round(ms);

beforeAll(async () => {
  browser = await launch();
  page = (await openPage(browser)).page;
  await call("POST", "/api/v1/workflows", { name: "bench-builder", definition: gridDefinition(BUILDER_NODES) });
  await login(page);
  await page.goto(`${inject("stack").api}/#/builder/new`);
  await page.waitForSelector("[data-testid=palette-noop]");
});

afterAll(async () => {
  await browser?.close();
});

test(`builder: ${BUILDER_NODES} nodes, ${EVENTS} edits, select-all + copy + paste, undo`, async () => {
  await startProbe(page);
  const firstRenderMs = await framesUntil(page, { hash: "#/builder/bench-builder", selector: ".react-flow__node", count: BUILDER_NODES });
  await stopProbe(page);

  // 1,000 edits: arrow-key nudges of the selected node, each one step of the undo history, as fast as they land.
  await page.focus(".react-flow__node[data-id=n0]");
  await page.keyboard.press("Enter");
  await page.waitForSelector("[data-testid=node-editor]");
  await startProbe(page);
  const applyMs = await page.evaluate(async (count) => {
    const node = document.querySelector(".react-flow__node[data-id=n0]") as HTMLElement;
    const started = performance.now();
    for (let i = 0; i < count; i += 1) {
      node.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight", bubbles: true }));
      await new Promise((r) => setTimeout(r, 0));
    }
    await new Promise((r) => requestAnimationFrame(r));
    return performance.now() - started;
  }, EVENTS);
  const during = await stopProbe(page);
  expect(await page.locator(".react-flow__node[data-id=n0]").evaluate((n) => (n as HTMLElement).style.transform)).not.toBe("translate(0px, 0px)");
  rows.push({ scenario: `builder, ${BUILDER_NODES} nodes`, firstRenderMs, applyMs, what: `${EVENTS} edits (arrow-key nudges)`, during });

  await page.keyboard.press("Control+A");
  await page.keyboard.press("Control+C");
  const pasteStarted = Date.now();
  await page.keyboard.press("Control+V");
  await framesUntil(page, { selector: ".react-flow__node", count: 2 * BUILDER_NODES });
  extra.pasteMs = Date.now() - pasteStarted;
  const undoStarted = Date.now();
  await page.keyboard.press("Control+Z");
  await page.waitForFunction((n) => document.querySelectorAll(".react-flow__node").length === n, BUILDER_NODES, { polling: "raf" });
  extra.undoMs = Date.now() - undoStarted;
});

/** Appends node_started + node_succeeded for the first ``count / 2`` nodes to the run's stream as the engine
 * would; returns the wall-clock ms when the appender began writing. */
function appendNodeEvents(runId: string, count: number): number {
  const { redisUrl, python } = inject("stack");
  const script = `
import json, sys, time, redis
from common.keys import Keys
run_id, count, url = sys.argv[1], int(sys.argv[2]), sys.argv[3]
client = redis.Redis.from_url(url)
key = Keys("").events(run_id)
started = time.time()
pipe = client.pipeline(transaction=False)
for i in range(count // 2):
    for kind in ("node_started", "node_succeeded"):
        data = {"attempt": 1} if kind == "node_started" else {"attempt": 1, "exec_ms": 0.1, "queue_ms": 0.1}
        event = {"type": kind, "run_id": run_id, "node_id": f"n{i + 1}", "ts": int(time.time() * 1000), "data": data}
        pipe.xadd(key, {"e": json.dumps(event)})
pipe.execute()
print(int(started * 1000))
`;
  return Number(execFileSync(python, ["-c", script, runId, String(count), redisUrl], { cwd: REPO }).toString().trim());
}

test(`run view: ${RUN_NODES} nodes live, ${EVENTS} events`, async () => {
  const gate = { id: "gate", type: "hitl", config: { title: "Hold the run while the view is measured", allow_self_approval: true } };
  const definition = gridDefinition(RUN_NODES, gate);
  await call("POST", "/api/v1/workflows", { name: "bench-run", definition });
  const runId = (await call<{ id: string }>("POST", "/api/v1/runs", { workflow_id: "bench-run", inputs: {} })).id;
  await expect.poll(async () => (await call<{ status: string }>("GET", `/api/v1/runs/${runId}`)).status, { timeout: 30_000 }).toBe("waiting");

  await startProbe(page);
  const firstRenderMs = await framesUntil(page, { hash: `#/runs/${runId}`, selector: ".react-flow__node", count: RUN_NODES });
  await framesUntil(page, { selector: "[data-testid=node-gate][data-status=waiting]" });
  await stopProbe(page);
  const before = Number(/(\d+) events applied/.exec((await page.textContent("[data-testid=run-summary]")) ?? "")?.[1]);

  await startProbe(page);
  const shown = page.evaluate(async (target) => {
    const summary = () => document.querySelector("[data-testid=run-summary]")?.textContent ?? "";
    while (!summary().includes(`${target} events applied`)) await new Promise((r) => requestAnimationFrame(r));
    return performance.timeOrigin + performance.now();
  }, before + EVENTS);
  const appendedAt = appendNodeEvents(runId, EVENTS);
  const applyMs = (await shown) - appendedAt;
  const during = await stopProbe(page);
  expect(await page.getAttribute("[data-testid=node-n500]", "data-status")).toBe("succeeded");
  rows.push({ scenario: `run view, ${RUN_NODES} nodes live`, firstRenderMs, applyMs, what: `${EVENTS} events (append → all shown)`, during });
  await call("POST", `/api/v1/runs/${runId}/cancel`);
});

test("report", () => {
  const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO }).toString().trim();
  const chromium = execFileSync(process.env.CHROMIUM_BIN ?? "/usr/bin/chromium", ["--version"]).toString().trim();
  const when = new Date().toISOString().slice(0, 16).replace("T", " ");
  // The figures scale with what else runs on the machine: the load average says how idle it was.
  const load = loadavg().map((v) => v.toFixed(1)).join(" / ");
  const lines = [
    "",
    `## UI (browser) — ${when} UTC, commit ${commit}`,
    "",
    `${chromium}, headless, \`--disable-gpu\` (software rendering), 1280×800, against \`aob up\` (embedded Redis and Postgres) on the same 2 cores (load average 1 / 5 / 15 min at the end: ${load}). First render: from setting the route to every node on the canvas measured and shown. Long tasks and frame gaps are those of the apply phase.`,
    "",
    "| scenario | first render ms | applied | apply ms | long tasks (count / ms) | frame gap p95 / max ms |",
    "|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.scenario} | ${round(r.firstRenderMs)} | ${r.what} | ${round(r.applyMs)} | ${r.during.longTasks} / ${round(r.during.longTaskMs)} | ${r.during.frameP95Ms} / ${r.during.frameMaxMs} |`,
    ),
    "",
    `Builder, ${BUILDER_NODES} nodes selected: paste (Ctrl+V) until all ${2 * BUILDER_NODES} are shown ${extra.pasteMs} ms; undo of that paste ${extra.undoMs} ms.`,
    "",
  ];
  appendFileSync(REPORT, lines.join("\n"));
  console.log(lines.join("\n"));
  console.log(JSON.stringify({ rows, ...extra, commit, load }));
});
