// A live agent against `aob up`'s scripted demo model: its log streams into the node's panel as markdown (hostile
// HTML and links in the model's text neither run nor render), its tool calls show as items with their results,
// its patch adds nodes that appear on the canvas while it still runs, and the tokens it used are counted.
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage, shot, type Watched } from "./browser";
import { REPO } from "./stack";

let browser: Browser;
let watched: Watched;
let page: Page;
let runId: string;

const HOSTILE = [
  "<script>window.__pwned = 'script'</script>",
  '<img src="x" onerror="window.__pwned = \'onerror\'">',
  "[a tempting link](javascript:window.__pwned='link')",
].join("\n\n");

const PATCH_OPS = [
  { op: "add", path: "/nodes/-", value: { id: "summarise", type: "transform", config: { output: { summary: "two rows" } } } },
  { op: "add", path: "/nodes/-", value: { id: "publish", type: "noop" } },
  { op: "add", path: "/edges/-", value: { from: "research", to: "summarise" } },
  { op: "add", path: "/edges/-", value: { from: "summarise", to: "publish" } },
];

// Conversation mode: the reply is picked by how many turns the conversation has, so re-runs get the same story.
const SCRIPT = [
  {
    // A slow model: the reply arrives a word at a time, so the page shows it while it streams.
    chunk_delay_s: 0.15,
    text:
      "## Plan\n\nI will **read the run's context** and then decide, step by step, whether this run needs a " +
      "`summarise` step after me; if it does I add it with `patch_workflow`:\n\n1. read the inputs\n2. patch the run\n\n" +
      `${HOSTILE}\n`,
    tool_calls: [{ name: "get_context", arguments: {} }],
    usage: { prompt_tokens: 120, completion_tokens: 48 },
  },
  {
    delay_s: 1.5,
    text: "The inputs name *two rows*. Adding `summarise` and `publish` downstream of me.\n",
    tool_calls: [{ name: "patch_workflow", arguments: { ops: PATCH_OPS, reason: "summarise the research" } }],
    usage: { prompt_tokens: 200, completion_tokens: 30 },
  },
  {
    delay_s: 6,
    text: "Patched. **Done.**\n",
    tool_calls: [{ name: "finish", arguments: { result: { rows: 2 } } }],
    usage: { prompt_tokens: 260, completion_tokens: 12 },
  },
];
const TOTAL_TOKENS = 120 + 48 + 200 + 30 + 260 + 12;

const definition = {
  nodes: [
    {
      id: "research",
      type: "agent",
      config: { prompt: "Research {{ inputs.topic }} and add the steps it needs.", tools: ["get_context", "patch_workflow"] },
    },
  ],
  edges: [],
};

async function setScript(steps: unknown[]): Promise<void> {
  const { llmUrl } = inject("stack");
  const response = await fetch(`${llmUrl}/_script`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ steps, replace: true, mode: "conversation" }),
  });
  if (!response.ok) throw new Error(`scripted LLM /_script: ${response.status} ${await response.text()}`);
}

beforeAll(async () => {
  expect(inject("stack").llmUrl, "aob up did not start its scripted demo LLM").not.toBe("");
  await setScript(SCRIPT);
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
  await call("POST", "/api/v1/workflows", { name: "live-agent", definition });
  await login(page);
  runId = (await call<{ id: string }>("POST", "/api/v1/runs", { workflow_id: "live-agent", inputs: { topic: "rows" } })).id;
  const { api } = inject("stack");
  await page.goto(`${api}/#/runs/${runId}`);
});

afterAll(async () => {
  await browser?.close();
  // The demo script goes back for the test files after this one.
  const { python } = inject("stack");
  const demo = execFileSync(python, ["-c", "import json; from devstack.llm_scripted import DEMO_SCRIPT; print(json.dumps(DEMO_SCRIPT))"], {
    cwd: REPO,
  });
  await setScript(JSON.parse(String(demo)));
});

test("the agent's text streams in as markdown and its tool calls appear as items while it runs", async () => {
  await page.waitForSelector("[data-testid=node-research][data-status=running]", { timeout: 30_000 });
  await page.click("[data-testid=node-research]");
  await page.click("[data-testid=logs-tab]");
  const log = page.locator("[data-testid=agent-log]");
  const reply = log.locator("[data-testid=agent-text]").first();
  await page.waitForSelector("[data-testid=agent-text][data-streaming=true]", { timeout: 20_000 });
  // Sampled while it streams: what shows grows, and never holds half a word or an unrendered marker.
  const seen: string[] = [];
  while ((await reply.getAttribute("data-streaming")) === "true") {
    seen.push(await reply.innerText());
    await page.waitForTimeout(100);
  }
  const final = await reply.innerText();
  const words = new Set(final.split(/\s+/));
  expect(new Set(seen).size).toBeGreaterThanOrEqual(3);
  for (const text of seen) {
    expect(text).not.toMatch(/\*\*|`/);
    const last = text.trim().split(/\s+/).pop() ?? "";
    if (last) expect(words.has(last), `"${last}" is not a whole word of the reply`).toBe(true);
  }
  expect(await log.locator(".agent-text h2").first().textContent()).toBe("Plan");
  expect(await log.locator(".agent-text strong").first().textContent()).toBe("read the run's context");
  expect(await log.locator(".agent-text ol li").count()).toBe(2);
  await page.waitForSelector("[data-testid=tool-item][data-tool=get_context]");
  expect(await page.getAttribute("[data-testid=node-research]", "data-status")).toBe("running");
});

test("the patch adds nodes that appear on the canvas while the agent still runs", async () => {
  await page.waitForSelector("[data-testid=node-summarise].patched", { timeout: 20_000 });
  await page.waitForSelector("[data-testid=node-publish].patched");
  expect(await page.getAttribute("[data-testid=node-research]", "data-status")).toBe("running");
  await page.waitForSelector("[data-testid=tool-item][data-tool=patch_workflow]");
  await page.click(".react-flow__controls-fitview");
  await page.locator("[data-testid=agent-log]").evaluate((element) => element.scrollTo(0, 0));
  await shot(page, "agent-live-log");
  const patch = page.locator("[data-testid=tool-item][data-tool=patch_workflow]");
  await patch.locator("summary").click();
  await expect.poll(() => patch.locator("[data-testid=tool-result]").textContent()).toMatch(/"applied": true/);
});

test("model text cannot run script, set handlers or link to javascript:", async () => {
  const log = page.locator("[data-testid=agent-log]");
  expect(await page.evaluate(() => (window as unknown as { __pwned?: string }).__pwned)).toBeUndefined();
  expect(await log.locator("script, img, [onerror]").count()).toBe(0);
  expect(await log.locator("a[href^='javascript']").count()).toBe(0);
  expect(await log.locator("a", { hasText: "a tempting link" }).count()).toBe(1);
  expect(await log.innerHTML()).not.toMatch(/onerror|<script/i);
});

test("the run succeeds with the added nodes; tokens are counted per reply, node and run", async () => {
  await expect.poll(() => page.textContent("[data-testid=run-status]"), { timeout: 40_000 }).toBe("succeeded");
  for (const id of ["research", "summarise", "publish"]) {
    expect(await page.getAttribute(`[data-testid=node-${id}]`, "data-status")).toBe("succeeded");
  }
  await expect.poll(() => page.textContent("[data-testid=agent-tokens]")).toBe(`${TOTAL_TOKENS} tokens (580 in / 90 out)`);
  expect(await page.locator("[data-testid=usage-item]").count()).toBe(3);
  const getContext = page.locator("[data-testid=tool-item][data-tool=get_context]");
  await getContext.locator("summary").click();
  await expect.poll(() => getContext.locator("[data-testid=tool-result]").textContent()).toMatch(/"topic": "rows"/);
  await page.click(".react-flow__controls-fitview");
  await shot(page, "agent-live-finished");

  await page.fill("[data-testid=log-search]", "publish");
  await expect.poll(() => page.textContent("[data-testid=log-matches]")).toMatch(/^2 of \d+$/);
  expect(await page.locator("[data-testid=tool-item][data-tool=get_context]").count()).toBe(0);
  await page.fill("[data-testid=log-search]", "");
  await page.check(".agent-log input[type=checkbox]");
  await expect.poll(() => page.textContent("[data-testid=log-count]")).toMatch(/^\d+ lines$/);
  expect(await page.locator(".log .line", { hasText: "@@AOB_RESULT@@" }).count()).toBe(1);
  await page.uncheck(".agent-log input[type=checkbox]");

  await page.click(".react-flow__pane", { position: { x: 20, y: 20 } });
  await expect.poll(() => page.textContent("[data-testid=run-tokens]")).toBe(`Agents used ${TOTAL_TOKENS} tokens (580 in / 90 out)`);
  expect(watched.errors).toEqual([]);
});
