// Helpers of the browser tests: Debian's Chromium through playwright-core, console errors collected,
// screenshots written to docs/screenshots, and small API calls for setting up and checking.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { inject } from "vitest";
import { REPO } from "./stack";

export const SHOTS = join(REPO, "docs/screenshots");

export async function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export type Watched = { page: Page; errors: string[] };

/** A 1280×800 page that records console errors and uncaught exceptions. */
export async function openPage(browser: Browser): Promise<Watched> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text());
  });
  page.on("pageerror", (error) => errors.push(String(error)));
  return { page, errors };
}

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

export async function login(page: Page): Promise<void> {
  const { api, adminKey } = inject("stack");
  await page.goto(api + "/");
  await page.fill("#api-key", adminKey);
  await page.click("button[type=submit]");
  await page.waitForSelector(".topbar");
}

export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const { api, adminKey } = inject("stack");
  const response = await fetch(api + path, {
    method,
    headers: { Authorization: `Bearer ${adminKey}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return JSON.parse(text) as T;
}

/** Append ``count`` log lines of ``nodeId`` to the run's event stream as the agent worker does: ``log`` events of
 * up to 100 lines ``{id, kind, line}`` each, then (``truncated``) the event marking the cap. */
export function appendLogEvents(runId: string, nodeId: string, count: number, prefix: string, truncated = false): void {
  const { redisUrl, python } = inject("stack");
  const script = `
import json, sys, time, redis
from common.keys import Keys
run_id, node_id, count, prefix, truncated = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
client = redis.Redis.from_url(sys.argv[6])
key = Keys("").events(run_id)
start = int(client.get(f"e2e:lines:{run_id}:{node_id}") or 0)
def event(data):
    return {"e": json.dumps({"type": "log", "run_id": run_id, "node_id": node_id, "ts": int(time.time() * 1000), "data": data})}
pipe = client.pipeline(transaction=False)
for first in range(0, count, 100):
    lines = [{"id": f"1-{start + n + 1}", "kind": "text", "line": f"{prefix} {n + 1}"} for n in range(first, min(count, first + 100))]
    pipe.xadd(key, event({"attempt": 1, "lines": lines}))
if truncated:
    pipe.xadd(key, event({"attempt": 1, "truncated": True, "dropped_lines": 1000}))
pipe.set(f"e2e:lines:{run_id}:{node_id}", start + count)
pipe.execute()
`;
  execFileSync(python, ["-c", script, runId, nodeId, String(count), prefix, truncated ? "1" : "0", redisUrl], { cwd: REPO });
}
