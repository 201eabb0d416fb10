// An agent node's log read as what happened: the model's text (pieces of a streamed line joined back), each tool
// call with its result, each model reply's token usage, and the remaining system records.
import type { LogLine, NodeLog } from "./runEvents";

const TEXT_ESCAPE = "text| ";
const RESULT_PREFIX = "@@AOB_RESULT@@";

export type Usage = { prompt: number; completion: number; total: number };

export type AgentItem =
  | { kind: "text"; id: string; text: string }
  | {
      kind: "tool";
      id: string;
      callId: string;
      tool: string;
      step?: number;
      arguments?: string;
      result?: string;
      ok?: boolean;
      durationMs?: number;
      error?: string;
    }
  | { kind: "usage"; id: string; step?: number; usage: Usage }
  | { kind: "system"; id: string; level: string; text: string };

export type AgentLogView = {
  items: AgentItem[];
  usage: Usage;
  /** The model's last text is still arriving: no record has followed it yet. */
  streaming: boolean;
};

type JsonRecord = Record<string, unknown>;

const ZERO: Usage = { prompt: 0, completion: 0, total: 0 };

/** The first ``count`` lines of a node's log as agent items. */
export function parseAgentLog(lines: LogLine[], count = lines.length): AgentLogView {
  const items: AgentItem[] = [];
  const tools = new Map<string, Extract<AgentItem, { kind: "tool" }>>();
  let usage = ZERO;
  let text: Extract<AgentItem, { kind: "text" }> | null = null;
  let joined = false;
  let ended = false;
  for (let i = 0; i < count; i++) {
    const line = lines[i];
    if (line.level === "text" || line.level === undefined) {
      const piece = line.text.startsWith(TEXT_ESCAPE) ? line.text.slice(TEXT_ESCAPE.length) : line.text;
      if (text) text.text += (joined ? "" : "\n") + piece;
      else {
        text = { kind: "text", id: line.id, text: piece };
        items.push(text);
      }
      joined = line.more === true;
      continue;
    }
    text = null;
    if (line.level === "result") {
      ended = true;
      items.push({ kind: "system", id: line.id, level: "result", text: resultText(line.text) });
      continue;
    }
    const record = parseRecord(line.text);
    if (!record) {
      items.push({ kind: "system", id: line.id, level: line.level ?? "log", text: line.text });
      continue;
    }
    const event = record.event;
    if (event === "usage") {
      const reply = usageOf(record);
      usage = { prompt: usage.prompt + reply.prompt, completion: usage.completion + reply.completion, total: usage.total + reply.total };
      items.push({ kind: "usage", id: line.id, step: num(record.step), usage: reply });
    } else if ((event === "tool_call" || event === "tool_result") && typeof record.call_id === "string") {
      let tool = tools.get(record.call_id);
      if (!tool) {
        tool = { kind: "tool", id: line.id, callId: record.call_id, tool: str(record.tool) ?? "tool", step: num(record.step) };
        tools.set(record.call_id, tool);
        items.push(tool);
      }
      if (event === "tool_call") tool.arguments = str(record.arguments);
      else {
        tool.result = str(record.result);
        tool.ok = record.ok === true;
        tool.durationMs = num(record.duration_ms);
        tool.error = str(record.error);
      }
    } else {
      items.push({ kind: "system", id: line.id, level: String(record.level ?? "info").toLowerCase(), text: str(record.msg) ?? line.text });
    }
  }
  const last = items[items.length - 1];
  return { items, usage, streaming: !ended && last?.kind === "text" };
}

/** Tokens used by every node of a run, read from the agent nodes' logs. */
export function runUsage(logs: Record<string, NodeLog>): Usage {
  let total = ZERO;
  for (const log of Object.values(logs)) {
    const usage = cachedUsage(log);
    total = { prompt: total.prompt + usage.prompt, completion: total.completion + usage.completion, total: total.total + usage.total };
  }
  return total;
}

/** Whether ``item`` holds ``query`` (case-insensitive) in what it shows. */
export function itemMatches(item: AgentItem, query: string): boolean {
  const needle = query.toLowerCase();
  const haystack =
    item.kind === "tool" ? [item.tool, item.arguments, item.result, item.error].join("\n") : item.kind === "usage" ? "" : item.text;
  return haystack.toLowerCase().includes(needle);
}

// Log arrays are append-only and shared between states: usage is counted once per line, however often asked.
const usageCache = new WeakMap<LogLine[], { count: number; usage: Usage }>();

function cachedUsage(log: NodeLog): Usage {
  const seen = usageCache.get(log.lines);
  let { count, usage } = seen && seen.count <= log.count ? seen : { count: 0, usage: ZERO };
  for (; count < log.count; count++) {
    const line = log.lines[count];
    if (line.level !== "log" || !line.text.includes('"usage"')) continue;
    const record = parseRecord(line.text);
    if (record?.event !== "usage") continue;
    const reply = usageOf(record);
    usage = { prompt: usage.prompt + reply.prompt, completion: usage.completion + reply.completion, total: usage.total + reply.total };
  }
  usageCache.set(log.lines, { count, usage });
  return usage;
}

function usageOf(record: JsonRecord): Usage {
  const prompt = num(record.prompt_tokens) ?? 0;
  const completion = num(record.completion_tokens) ?? 0;
  return { prompt, completion, total: num(record.tokens) ?? prompt + completion };
}

function parseRecord(text: string): JsonRecord | null {
  if (!text.startsWith("{")) return null;
  try {
    const value: unknown = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? (value as JsonRecord) : null;
  } catch {
    return null;
  }
}

function resultText(line: string): string {
  const record = parseRecord(line.slice(RESULT_PREFIX.length).trim());
  if (!record) return "result";
  const error = record.error as JsonRecord | null | undefined;
  return error ? `result: ${str(record.status)} (${str(error.type)}: ${str(error.message)})` : `result: ${str(record.status)}`;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}
