// A secret created in the UI and used by runs (an HTTP node's header) without its value ever reaching a page:
// neither the rendered DOM of any page visited nor any API answer or feed frame the page received holds it, raw or
// encoded. Then notifications: a webhook subscription made in the UI, its "send test" delivered to a local
// receiver through the notifier, signed, and shown in its delivery log.
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage, shot, type Watched } from "./browser";
import { Receiver } from "./receiver";

let browser: Browser;
let watched: Watched;
let page: Page;
const received: string[] = [];
const pending: Promise<void>[] = [];

const first = `e2e-first-${Math.random().toString(36).slice(2)}-value`;
const second = `e2e-second-${Math.random().toString(36).slice(2)}-value`;
let expected = first;

// The HTTP node's target: refuses a wrong token, and echoes the one it got (which the worker must redact).
const receiver = new Receiver((request) => {
  if (request.path.startsWith("/echo")) {
    const ok = request.headers.authorization === `Bearer ${expected}`;
    return { status: ok ? 200 : 401, body: { seen: request.headers.authorization ?? null } };
  }
  return { status: 200, body: { ok: true } };
});

function forms(value: string): string[] {
  return [value, Buffer.from(value).toString("base64"), encodeURIComponent(value)];
}

/** Every API answer and feed frame the page receives, kept to be searched. */
function recordTraffic(target: Page): void {
  const { api } = inject("stack");
  target.on("response", (response) => {
    if (!response.url().startsWith(api)) return;
    pending.push(response.text().then((text) => void received.push(`${response.url()}\n${text}`), () => {}));
  });
  target.on("websocket", (socket) => socket.on("framereceived", (frame) => void received.push(String(frame.payload))));
}

/** The rendered page (markup, text and every field's value) holds no form of either secret value. */
async function expectNoSecretOnPage(where: string): Promise<void> {
  const dom = await page.evaluate(
    () =>
      document.documentElement.outerHTML +
      "\n" +
      document.body.innerText +
      "\n" +
      Array.from(document.querySelectorAll("input, textarea, select"), (e) => (e as HTMLInputElement).value).join("\n"),
  );
  for (const value of [...forms(first), ...forms(second)]) expect(dom, `${where} shows a secret`).not.toContain(value);
}

async function visit(hash: string, ready: string): Promise<void> {
  await page.goto(`${inject("stack").api}/${hash}`);
  await page.waitForSelector(ready);
  await expectNoSecretOnPage(hash);
}

beforeAll(async () => {
  await receiver.start();
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
  recordTraffic(page);
  await call("POST", "/api/v1/workflows", {
    name: "call-with-secret",
    definition: {
      nodes: [
        {
          id: "call",
          type: "http",
          config: { method: "GET", url: `${receiver.url}/echo`, headers: { Authorization: "Bearer {{ secrets.E2E_TOKEN }}" } },
        },
      ],
      edges: [],
    },
  });
  await call("POST", "/api/v1/workflows", { name: "notify-me", definition: { nodes: [{ id: "done", type: "noop" }], edges: [] } });
  await login(page);
});

afterAll(async () => {
  await browser?.close();
  await receiver.stop();
});

async function runAndWatch(label: string): Promise<void> {
  const run = await call<{ id: string }>("POST", "/api/v1/runs", { workflow_id: "call-with-secret", inputs: {} });
  await visit(`#/runs/${run.id}`, "[data-testid=node-call]");
  await expect.poll(() => page.textContent("[data-testid=run-status]"), { timeout: 20_000 }).toBe("succeeded");
  await page.click("[data-testid=node-call]");
  // The server echoed the token back; the node's output shows it redacted.
  await expect.poll(() => page.textContent("[data-testid=node-detail]")).toMatch(/seen/);
  await expectNoSecretOnPage(`run ${label}`);
}

test("a secret created in the UI is used by a run and never shown", async () => {
  await visit("#/secrets", "[data-testid=new-secret]");
  await page.fill("#secret-name", "E2E_TOKEN");
  await page.fill("#secret-value", first);
  expect(await page.getAttribute("#secret-value", "type")).toBe("password");
  await page.getByRole("button", { name: "Save secret" }).click();
  await page.waitForSelector("[data-testid=secret-E2E_TOKEN]");
  await expect.poll(() => page.textContent("[data-testid=secrets-status]")).toMatch(/E2E_TOKEN saved/);
  // Cleared once sent: the value is in no field, no markup, no text.
  expect(await page.inputValue("#secret-value")).toBe("");
  await expectNoSecretOnPage("secrets page after saving");
  await shot(page, "admin-secrets");

  await runAndWatch("with the first value");
  await shot(page, "admin-secret-used-redacted");
  expect(receiver.requests.filter((r) => r.path === "/echo").map((r) => r.headers.authorization)).toEqual([`Bearer ${first}`]);

  // Rotate: a new value, written in the row; the next run sends it.
  await visit("#/secrets", "[data-testid=secret-E2E_TOKEN]");
  await page.getByRole("button", { name: "Rotate E2E_TOKEN" }).click();
  await page.fill("#rotate-E2E_TOKEN", second);
  await page.getByRole("button", { name: "Save new value" }).click();
  await expect.poll(() => page.textContent("[data-testid=secrets-status]")).toMatch(/E2E_TOKEN has a new value/);
  await expectNoSecretOnPage("secrets page after rotating");
  expected = second;
  await runAndWatch("with the second value");
  expect(receiver.requests.filter((r) => r.path === "/echo").map((r) => r.headers.authorization)).toEqual([`Bearer ${first}`, `Bearer ${second}`]);

  // Every other page, then the API answers and feed frames the page got all along.
  for (const [hash, ready] of [
    ["#/runs", "[data-testid=runs-list]"],
    ["#/approvals", "h2"],
    ["#/builder", "[data-testid=canvas]"],
    ["#/automation", "#automation-workflow"],
    ["#/notifications", "[data-testid=subscription-form]"],
    ["#/keys", "[data-testid=keys-list]"],
  ]) {
    await visit(hash, ready);
  }
  await Promise.all(pending);
  expect(received.length).toBeGreaterThan(20);
  expect(received.some((text) => text.includes("/api/v1/secrets") && text.includes("E2E_TOKEN"))).toBe(true);
  for (const value of [...forms(first), ...forms(second)]) {
    expect(received.filter((text) => text.includes(value))).toEqual([]);
  }

  // Deleted in the UI, it is gone from the list and the API.
  await visit("#/secrets", "[data-testid=secret-E2E_TOKEN]");
  await page.getByRole("button", { name: "Delete E2E_TOKEN" }).click();
  await page.getByRole("button", { name: "Delete E2E_TOKEN" }).click();
  await expect.poll(() => page.locator("[data-testid=secret-E2E_TOKEN]").count()).toBe(0);
  const names = await call<{ items: { name: string }[] }>("GET", "/api/v1/secrets");
  expect(names.items.map((s) => s.name)).not.toContain("E2E_TOKEN");
  expect(watched.errors).toEqual([]);
});

test("a webhook subscription: send test is delivered, signed, and logged", async () => {
  await visit("#/notifications", "[data-testid=subscription-form]");
  await page.fill("#sub-target", `${receiver.url}/notify`);
  await page.getByRole("checkbox", { name: "run succeeded" }).check();
  await page.getByRole("button", { name: "Subscribe" }).click();
  const signing = (await page.locator("[data-testid=signing-secret-value]").textContent()) ?? "";
  expect(signing).toMatch(/^[0-9a-f]{64}$/);
  await page.getByRole("region", { name: /Signing secret/ }).getByRole("button", { name: "Done" }).click();
  expect(await page.content()).not.toContain(signing);

  const card = page.getByRole("article", { name: `subscription ${receiver.url}/notify` });
  await expect.poll(() => card.textContent()).toMatch(/run_failed, run_succeeded/);
  await card.getByRole("button", { name: "Send test" }).click();
  await expect.poll(() => card.locator("[data-testid=test-state]").textContent(), { timeout: 20_000 }).toMatch(/delivered on attempt 1 \(HTTP 200\)/);
  await expect.poll(() => card.locator("[data-testid=delivery-test]").count()).toBe(1);

  const [delivery] = receiver.requests.filter((r) => r.path === "/notify");
  expect(delivery.headers["x-aob-event"]).toBe("test");
  const timestamp = String(delivery.headers["x-aob-timestamp"]);
  const signature = createHmac("sha256", signing).update(`${timestamp}.${delivery.body}`).digest("hex");
  expect(delivery.headers["x-aob-signature"]).toBe(`sha256=${signature}`);
  expect(JSON.parse(delivery.body)).toMatchObject({ type: "test", run_id: null });

  // A real event too: a run that succeeds is delivered, and the log shows it once read again.
  const run = await call<{ id: string }>("POST", "/api/v1/runs", { workflow_id: "notify-me", inputs: {} });
  await expect.poll(() => receiver.requests.filter((r) => r.path === "/notify").length, { timeout: 20_000 }).toBe(2);
  await card.getByRole("button", { name: "Refresh log" }).click();
  await expect.poll(() => card.locator("[data-testid=delivery-run_succeeded]").textContent()).toContain(run.id);
  await shot(page, "admin-notifications");

  // Deleted in the UI (the browser tests after this one send no more to a receiver that has gone).
  await card.getByRole("button", { name: "Delete", exact: true }).click();
  await card.getByRole("button", { name: "Delete this subscription" }).click();
  await expect.poll(() => page.locator("[data-testid^=subscription-nsub_]").count()).toBe(0);
  expect((await call<{ items: unknown[] }>("GET", "/api/v1/notifications/subscriptions")).items).toEqual([]);
  expect(watched.errors).toEqual([]);
});
