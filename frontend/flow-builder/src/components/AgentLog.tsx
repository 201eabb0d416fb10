// An agent node's log as a conversation: the model's text rendered as markdown while it streams (raw HTML, images
// and unsafe links never reach the page), tool calls as collapsible items with their results, token usage, a search.
import { useLayoutEffect, useMemo, useRef, useState, type ReactNode } from "react";
import Markdown, { type Components } from "react-markdown";
import remarkGfm from "remark-gfm";
import { itemMatches, parseAgentLog, runUsage, type AgentItem, type Usage } from "../state/agentLog";
import { stablePrefix } from "../state/markdownStream";
import type { NodeLog } from "../state/runEvents";

// Past this many lines the log opens as raw lines: every item is rendered, the raw view only the ones in sight.
const RENDERED_MAX_LINES = 5_000;
const PLUGINS = [remarkGfm];
// A model-chosen image URL would be fetched by the browser (a way to send data out): images become plain links.
const COMPONENTS: Components = {
  a: ({ href, children }) => (
    <a href={href} target="_blank" rel="noopener noreferrer nofollow">
      {children}
    </a>
  ),
  img: ({ src, alt }) => (
    <a href={typeof src === "string" ? src : undefined} target="_blank" rel="noopener noreferrer nofollow">
      [image: {alt || "untitled"}]
    </a>
  ),
};

/** Model text as markdown; raw HTML is dropped, and react-markdown's URL filter empties javascript: and data: links. */
export function SafeMarkdown({ text }: { text: string }) {
  return (
    <Markdown remarkPlugins={PLUGINS} components={COMPONENTS} skipHtml>
      {text}
    </Markdown>
  );
}

export function tokens(usage: Usage): string {
  return `${usage.total.toLocaleString()} tokens (${usage.prompt.toLocaleString()} in / ${usage.completion.toLocaleString()} out)`;
}

/** ``log`` as items; ``rawLines`` (the virtualised raw lines) is shown instead when "raw" is ticked. */
export function AgentLog({ log, rawLines }: { log: NodeLog; rawLines: ReactNode }) {
  const [query, setQuery] = useState("");
  const [raw, setRaw] = useState(log.count > RENDERED_MAX_LINES);
  const view = useMemo(() => parseAgentLog(log.lines, log.count), [log.lines, log.count]);
  const shown = query ? view.items.filter((item) => itemMatches(item, query)) : view.items;
  const box = useRef<HTMLDivElement>(null);
  const atBottom = useRef(true);
  useLayoutEffect(() => {
    if (atBottom.current && box.current) box.current.scrollTop = box.current.scrollHeight;
  });
  const last = view.items[view.items.length - 1];
  return (
    <div className="agent-log">
      <div className="row" style={{ marginBottom: 4 }}>
        <span className="muted" data-testid="agent-tokens">{tokens(view.usage)}</span>
        <span style={{ flex: 1 }} />
        <label className="row" style={{ width: "auto" }}>
          <input type="checkbox" style={{ width: "auto" }} checked={raw} onChange={(e) => setRaw(e.target.checked)} /> raw
        </label>
      </div>
      {raw ? (
        rawLines
      ) : (
        <>
          <div className="row" style={{ marginBottom: 4 }}>
            <input
              type="search"
              placeholder="Search this log"
              aria-label="Search this node's log"
              value={query}
              onChange={(e) => setQuery(e.target.value)}
              data-testid="log-search"
            />
            {query && <span className="muted" data-testid="log-matches">{shown.length} of {view.items.length}</span>}
          </div>
          <div
            className="agent-items"
            ref={box}
            data-testid="agent-log"
            onScroll={(e) => {
              const element = e.currentTarget;
              atBottom.current = element.scrollTop + element.clientHeight >= element.scrollHeight - 24;
            }}
          >
            {shown.map((item) => (
              <Item key={item.id} item={item} streaming={view.streaming && item === last} />
            ))}
            {log.truncated && <div className="line truncated" data-testid="log-truncated">… log truncated: later lines were counted, not stored</div>}
          </div>
        </>
      )}
    </div>
  );
}

function Item({ item, streaming }: { item: AgentItem; streaming: boolean }) {
  switch (item.kind) {
    case "text": {
      // While the text still arrives, only the part that ends between words with every construct closed is shown.
      const text = streaming ? item.text.slice(0, stablePrefix(item.text)) : item.text;
      return (
        <div className="agent-text" data-testid="agent-text" data-streaming={streaming}>
          <SafeMarkdown text={text} />
        </div>
      );
    }
    case "tool":
      return (
        <details className="agent-tool" data-testid="tool-item" data-tool={item.tool}>
          <summary>
            <b>{item.tool}</b>
            {item.step !== undefined && <span className="muted"> · step {item.step}</span>}
            {item.ok === undefined ? (
              <span className="muted"> · running…</span>
            ) : (
              <span className={item.ok ? "ok" : "bad"}> · {item.ok ? "ok" : "failed"}</span>
            )}
            {item.durationMs !== undefined && <span className="muted"> · {item.durationMs} ms</span>}
          </summary>
          <h4>Arguments</h4>
          <pre>{pretty(item.arguments)}</pre>
          {item.result !== undefined && (
            <>
              <h4>Result</h4>
              <pre data-testid="tool-result">{pretty(item.result)}</pre>
            </>
          )}
        </details>
      );
    case "usage":
      return (
        <div className="agent-usage muted" data-testid="usage-item">
          {item.step !== undefined ? `step ${item.step}: ` : ""}
          {tokens(item.usage)}
        </div>
      );
    default:
      return <div className={`agent-system level-${item.level}`}>{item.text}</div>;
  }
}

/** JSON text indented for reading; anything else (a preview cut short) as it is. */
function pretty(text: string | undefined): string {
  if (text === undefined) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** Tokens the run's agents used so far (shown once any did). */
export function RunTokens({ logs }: { logs: Record<string, NodeLog> }) {
  const usage = runUsage(logs);
  if (usage.total === 0) return null;
  return <p data-testid="run-tokens">Agents used {tokens(usage)}</p>;
}
