import { describe, expect, it } from "vitest";
import { itemMatches, parseAgentLog, runUsage } from "./agentLog";
import { applyEvents, emptyRunView, type LogLine } from "./runEvents";

const record = (fields: Record<string, unknown>) => JSON.stringify({ ts: "2026-11-30T10:00:00.000Z", level: "INFO", ...fields });

const LINES: LogLine[] = [
  { id: "1-1", level: "log", text: record({ msg: "model call", step: 1, messages: 2 }) },
  { id: "1-2", level: "text", text: "I will **read ", more: true },
  { id: "1-3", level: "text", text: "the context** first." },
  { id: "1-4", level: "text", text: "text| {\"ts\": 1, \"level\": \"x\"} is just text" },
  { id: "1-5", level: "log", text: record({ msg: "model replied", event: "usage", step: 1, prompt_tokens: 120, completion_tokens: 30, tokens: 150 }) },
  { id: "1-6", level: "log", text: record({ msg: "tool started", event: "tool_call", step: 1, tool: "get_context", call_id: "c1", arguments: "{}" }) },
  { id: "1-7", level: "log", text: record({ msg: "tool call", event: "tool_result", step: 1, tool: "get_context", call_id: "c1", ok: true, duration_ms: 1.5, result: '{"inputs": {"city": "Oslo"}}' }) },
  { id: "1-8", level: "log", text: record({ msg: "model replied", event: "usage", step: 2, prompt_tokens: 200, completion_tokens: 10, tokens: 210 }) },
  { id: "1-9", level: "result", text: '@@AOB_RESULT@@ {"status": "succeeded", "output": 1, "error": null}' },
];

describe("parseAgentLog", () => {
  it("joins streamed pieces, unescapes text, pairs tool calls with results and sums usage", () => {
    const view = parseAgentLog(LINES);
    const kinds = view.items.map((item) => item.kind);
    expect(kinds).toEqual(["system", "text", "usage", "tool", "usage", "system"]);
    expect(view.items[1]).toMatchObject({ kind: "text", text: 'I will **read the context** first.\n{"ts": 1, "level": "x"} is just text' });
    expect(view.items[3]).toMatchObject({ kind: "tool", tool: "get_context", arguments: "{}", ok: true, durationMs: 1.5, result: '{"inputs": {"city": "Oslo"}}' });
    expect(view.usage).toEqual({ prompt: 320, completion: 40, total: 360 });
    expect(view.items[5]).toMatchObject({ kind: "system", text: "result: succeeded" });
    expect(view.streaming).toBe(false);
  });

  it("says the text is streaming while nothing has followed it, and a started tool is running", () => {
    const view = parseAgentLog(LINES, 6);
    const tool = view.items[view.items.length - 1];
    expect(tool.kind === "tool" && tool.ok === undefined && tool.result === undefined).toBe(true);
    expect(parseAgentLog(LINES, 3).streaming).toBe(true);
    expect(parseAgentLog(LINES, 3).items[1]).toMatchObject({ text: "I will **read the context** first." });
  });

  it("keeps lines it cannot read as they are", () => {
    const view = parseAgentLog([{ id: "1-1", level: "log", text: '{"ts": "cut short' }]);
    expect(view.items).toEqual([{ kind: "system", id: "1-1", level: "log", text: '{"ts": "cut short' }]);
  });

  it("finds items by what they show", () => {
    const view = parseAgentLog(LINES);
    expect(view.items.filter((item) => itemMatches(item, "OSLO")).map((item) => item.kind)).toEqual(["tool"]);
    expect(view.items.filter((item) => itemMatches(item, "context**")).map((item) => item.id)).toEqual(["1-2"]);
  });
});

describe("runUsage", () => {
  it("sums the usage of every node's log as events arrive, counting each line once", () => {
    const event = (id: string, node: string, lines: LogLine[]) => ({
      id,
      type: "log",
      run_id: "r",
      node_id: node,
      ts: 1,
      data: { attempt: 1, lines: lines.map((l) => ({ id: l.id, kind: l.level, line: l.text, ...(l.more ? { more: true } : {}) })) },
    });
    let view = applyEvents(emptyRunView(), [event("1-0", "a", LINES.slice(0, 5))]);
    expect(runUsage(view.logs)).toEqual({ prompt: 120, completion: 30, total: 150 });
    expect(view.logs.a.lines[1].more).toBe(true);
    view = applyEvents(view, [event("2-0", "a", LINES.slice(5)), event("3-0", "b", LINES.slice(4, 5))]);
    expect(runUsage(view.logs)).toEqual({ prompt: 440, completion: 70, total: 510 });
    expect(runUsage(view.logs)).toEqual({ prompt: 440, completion: 70, total: 510 });
  });
});
