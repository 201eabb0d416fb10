// Editing comforts of the builder: undo/redo of edits, moves and deletes; multi-select and copy/paste within a
// workflow and into another one found through the picker's search; the node palette's search; the shortcut help.
import { afterAll, beforeAll, expect, inject, test } from "vitest";
import type { Browser, Page } from "playwright-core";
import { call, launch, login, openPage, shot, type Watched } from "./browser";

let browser: Browser;
let watched: Watched;
let page: Page;

const source = {
  nodes: [
    { id: "prepare", type: "transform", config: { output: { greeting: "Hello" } }, metadata: { ui: { x: 40, y: 80 } } },
    { id: "publish", type: "transform", config: { output: { text: "{{ nodes.prepare.output.greeting }}" } }, metadata: { ui: { x: 320, y: 80 } } },
    { id: "done", type: "noop", metadata: { ui: { x: 600, y: 80 } } },
  ],
  edges: [
    { from: "prepare", to: "publish" },
    { from: "publish", to: "done" },
  ],
};
const target = { nodes: [{ id: "start", type: "noop", metadata: { ui: { x: 40, y: 300 } } }], edges: [] };

type Stored = { version: number; definition: { nodes: { id: string; config?: unknown }[]; edges: { from: string; to: string }[] } };

beforeAll(async () => {
  browser = await launch();
  watched = await openPage(browser);
  page = watched.page;
  await call("POST", "/api/v1/workflows", { name: "copy-source", definition: source });
  await call("POST", "/api/v1/workflows", { name: "copy-target", definition: target });
  await login(page);
  const { api } = inject("stack");
  await page.goto(`${api}/#/builder/copy-source`);
  await page.waitForSelector("[data-testid=node-done]");
});

afterAll(async () => {
  await browser?.close();
});

const nodeIds = () => page.locator(".react-flow__node").evaluateAll((all) => all.map((n) => n.getAttribute("data-id")));
const edgeCount = () => page.locator(".react-flow__edge").count();
async function pointAtEmptyCanvas(): Promise<void> {
  const pane = (await page.locator("[data-testid=canvas]").boundingBox())!;
  await page.mouse.move(pane.x + 260, pane.y + 40);
}
const position = (id: string) => page.locator(`.react-flow__node[data-id="${id}"]`).evaluate((n) => (n as HTMLElement).style.transform);

test("undo and redo an edit, a move and a delete, by keys and by buttons", async () => {
  // A workflow just opened has no unsaved changes (it said "unsaved" at once: the name was left out of the
  // saved copy it is compared with).
  await expect.poll(() => page.textContent("[data-testid=saved-version]")).toBe("v1");
  // The workflow's fields show the opened workflow's (it has no inputs), not those of the empty one before it.
  expect(await page.inputValue("#wf-inputs")).toBe("");
  await page.click("[data-testid=node-publish]");
  await page.fill("#node-name", "Publish it");
  await expect.poll(() => page.textContent("[data-testid=node-publish] .id")).toBe("Publish it");
  // Typing is one step: a single undo takes the whole name back (focus on the node, not in the field).
  await page.click("[data-testid=node-publish]");
  await page.keyboard.press("Control+Z");
  await expect.poll(() => page.textContent("[data-testid=node-publish] .id")).toBe("publish");
  expect(await page.inputValue("#node-name")).toBe("");
  await page.keyboard.press("Control+Shift+Z");
  await expect.poll(() => page.textContent("[data-testid=node-publish] .id")).toBe("Publish it");

  const before = await position("done");
  const box = (await page.locator("[data-testid=node-done]").boundingBox())!;
  await page.mouse.move(box.x + 40, box.y + 20);
  await page.mouse.down();
  await page.mouse.move(box.x - 160, box.y + 150, { steps: 10 });
  await page.mouse.up();
  await expect.poll(() => position("done")).not.toBe(before);

  await page.click("[data-testid=node-publish]");
  await page.keyboard.press("Delete");
  await expect.poll(nodeIds).toEqual(["prepare", "done"]);
  expect(await edgeCount()).toBe(0);
  await shot(page, "14-builder-before-undo");

  await page.getByRole("button", { name: "Undo", exact: true }).click();
  await expect.poll(nodeIds).toEqual(["prepare", "publish", "done"]);
  await expect.poll(edgeCount).toBe(2);
  await page.keyboard.press("Control+Z");
  await expect.poll(() => position("done")).toBe(before);
  await shot(page, "15-builder-after-undo");
  await page.getByRole("button", { name: "Redo", exact: true }).click();
  await expect.poll(() => position("done")).not.toBe(before);
  await page.keyboard.press("Control+Y");
  await expect.poll(nodeIds).toEqual(["prepare", "done"]);
  // Undo back to the opened workflow: no further step, the button is disabled.
  for (let i = 0; i < 4; i += 1) await page.keyboard.press("Control+Z");
  await expect.poll(nodeIds).toEqual(["prepare", "publish", "done"]);
  await expect.poll(() => page.textContent("[data-testid=node-publish] .id")).toBe("publish");
  expect(await page.getByRole("button", { name: "Undo", exact: true }).isDisabled()).toBe(true);
  await expect.poll(() => page.textContent("[data-testid=saved-version]")).toBe("v1");
  expect(watched.errors).toEqual([]);
});

test("multi-select, copy and paste within a workflow: fresh ids, the edge and templates follow", async () => {
  await page.click("[data-testid=node-prepare]");
  await page.click("[data-testid=node-publish]", { modifiers: ["Control"] });
  await expect.poll(() => page.textContent("[data-testid=selection-editor] h2")).toBe("2 nodes selected");
  await page.keyboard.press("Control+C");
  await expect.poll(() => page.textContent("[role=status]")).toMatch(/Copied 2 nodes/);
  const pane = (await page.locator("[data-testid=canvas]").boundingBox())!;
  await page.mouse.move(pane.x + 200, pane.y + pane.height - 220);
  await page.keyboard.press("Control+V");
  await expect.poll(nodeIds).toEqual(["prepare", "publish", "done", "prepare_2", "publish_2"]);
  await expect.poll(edgeCount).toBe(3);
  await expect.poll(() => page.textContent("[data-testid=selection-editor] h2")).toBe("2 nodes selected");
  await shot(page, "16-builder-copy-paste");
  await page.click(".react-flow__pane", { position: { x: 20, y: 20 } });
  await page.click("[data-testid=node-publish_2]");
  expect(JSON.parse(await page.inputValue("#config-publish_2-output"))).toEqual({ text: "{{ nodes.prepare_2.output.greeting }}" });
  // The paste is one step.
  await page.keyboard.press("Control+Z");
  await expect.poll(nodeIds).toEqual(["prepare", "publish", "done"]);
  expect(watched.errors).toEqual([]);
});

test("paste into another workflow opened through the picker's search, then save it", async () => {
  await page.fill("[data-testid=workflow-search]", "copy-t");
  await page.getByRole("option", { name: /copy-target/ }).click();
  await page.waitForURL(/#\/builder\/copy-target$/);
  await page.waitForSelector("[data-testid=node-start]");
  await page.click("[data-testid=node-start]");
  await pointAtEmptyCanvas();
  await page.keyboard.press("Control+V");
  await expect.poll(nodeIds).toEqual(["start", "prepare", "publish"]);
  await expect.poll(edgeCount).toBe(1);
  // Validated live like any edit.
  await expect.poll(() => page.textContent("[data-testid=validity]")).toBe("valid");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await expect.poll(() => page.textContent("[role=status]")).toMatch(/version 2/);
  await shot(page, "17-builder-paste-other-workflow");
  const stored = await call<Stored>("GET", "/api/v1/workflows/copy-target");
  expect(stored.definition.nodes.map((n) => n.id)).toEqual(["start", "prepare", "publish"]);
  expect(stored.definition.edges).toEqual([{ from: "prepare", to: "publish" }]);

  // The Paste button reads the system clipboard when allowed, else the copy kept in localStorage.
  await page.getByRole("button", { name: "Paste", exact: true }).click();
  await expect.poll(nodeIds).toEqual(["start", "prepare", "publish", "prepare_2", "publish_2"]);
  // Nodes that are broken are refused with a message, not pasted.
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.setData("text/plain", '{"nodes": [{"id": "x"}]}');
    document.body.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true }));
  });
  await expect.poll(() => page.textContent("[role=alert]")).toMatch(/pasted nodes\[0\]\.type: expected a non-empty string/);
  expect(watched.errors).toEqual([]);
});

test("the palette's search adds a node by keyboard; ? shows every shortcut", async () => {
  await page.click(".react-flow__pane", { position: { x: 20, y: 20 } });
  await page.keyboard.press("/");
  await expect.poll(() => page.evaluate(() => document.activeElement?.getAttribute("data-testid"))).toBe("palette-search");
  await page.keyboard.type("approv");
  await expect.poll(() => page.locator("[data-testid^=palette-]:not([data-testid=palette-search])").evaluateAll((all) => all.map((e) => e.getAttribute("data-testid")))).toEqual(["palette-hitl"]);
  await page.keyboard.press("Enter");
  await page.waitForSelector("[data-testid=node-hitl]");
  await page.fill("[data-testid=palette-search]", "no such thing");
  await page.waitForSelector("[data-testid=palette-empty]");
  await page.fill("[data-testid=palette-search]", "");

  await page.click(".react-flow__pane", { position: { x: 20, y: 20 } });
  await page.keyboard.press("?");
  await page.waitForSelector("[data-testid=shortcut-help]");
  await expect.poll(() => page.textContent("[data-testid=shortcut-help]")).toMatch(/Ctrl\+Shift\+Z.*Redo/);
  await shot(page, "18-builder-shortcut-help");
  await page.keyboard.press("Escape");
  await expect.poll(() => page.locator("[data-testid=shortcut-help]").count()).toBe(0);
  expect(watched.errors).toEqual([]);
});
