// A node's log: only the rows in view are rendered, so 100,000 lines scroll as smoothly as ten; it follows the
// tail until the user scrolls up, and says when lines beyond the cap were dropped.
import { useEffect, useLayoutEffect, useRef, useState } from "react";
import type { Page } from "../api/types";
import { useSession } from "../session";
import type { LogLine, NodeLog } from "../state/runEvents";
import { AgentLog } from "./AgentLog";

const ROW_PX = 18;
const OVERSCAN = 20;

export function VirtualLog({ lines, count, truncated }: { lines: LogLine[]; count: number; truncated: boolean }) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(400);
  const [follow, setFollow] = useState(true);
  const total = count + (truncated ? 1 : 0);
  useLayoutEffect(() => {
    const element = box.current;
    if (!element) return;
    setHeight(element.clientHeight);
    const observer = new ResizeObserver(() => setHeight(element.clientHeight));
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  useLayoutEffect(() => {
    if (follow && box.current) box.current.scrollTop = total * ROW_PX;
  }, [follow, total, height]);
  const first = Math.max(0, Math.floor(scrollTop / ROW_PX) - OVERSCAN);
  const last = Math.min(total, Math.ceil((scrollTop + height) / ROW_PX) + OVERSCAN);
  const rows: React.ReactNode[] = [];
  for (let i = first; i < last; i++) {
    const style = { top: i * ROW_PX };
    if (i === count) {
      rows.push(<div key="truncated" className="line truncated" style={style} data-testid="log-truncated">… log truncated: later lines were counted, not stored</div>);
    } else {
      const line = lines[i];
      const system = line.level === "log";
      rows.push(<div key={line.id} className={`line${system ? " system" : ""}`} style={style} title={line.text}>{line.text}</div>);
    }
  }
  return (
    <>
      <div className="row" style={{ marginBottom: 4 }}>
        <span className="muted" data-testid="log-count">{count.toLocaleString()} lines</span>
        <span style={{ flex: 1 }} />
        <label className="row" style={{ width: "auto" }}>
          <input type="checkbox" style={{ width: "auto" }} checked={follow} onChange={(e) => setFollow(e.target.checked)} /> follow
        </label>
      </div>
      <div
        className="log"
        ref={box}
        data-testid="log"
        onScroll={(e) => {
          const element = e.currentTarget;
          setScrollTop(element.scrollTop);
          const atBottom = element.scrollTop + element.clientHeight >= element.scrollHeight - ROW_PX;
          if (!atBottom && follow) setFollow(false);
          if (atBottom && !follow) setFollow(true);
        }}
      >
        <div style={{ height: total * ROW_PX, position: "relative" }}>{rows}</div>
      </div>
    </>
  );
}

type StoredLine = { id: string; line?: string; text?: string; kind?: string; more?: boolean };

/** The live log of ``nodeId``; when the run's events hold none (archived), the stored lines are paged in. An agent
 * node's log is shown as its conversation. */
export function LogPanel({ runId, nodeId, log, nodeType }: { runId: string; nodeId: string; log: NodeLog | undefined; nodeType?: string }) {
  const { api } = useSession();
  const [stored, setStored] = useState<NodeLog | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const live = log?.count ?? 0;
  useEffect(() => {
    if (live > 0) return;
    let cancelled = false;
    const load = async () => {
      const lines: LogLine[] = [];
      let after = "0-0";
      let truncated = false;
      for (let page = 0; page < 50 && !cancelled; page++) {
        const body = await api.get<Page<StoredLine> & { truncated?: boolean }>(
          `/api/v1/runs/${encodeURIComponent(runId)}/nodes/${encodeURIComponent(nodeId)}/logs?after=${encodeURIComponent(after)}`,
        );
        for (const item of body.items) lines.push({ id: item.id, text: item.line ?? item.text ?? "", level: item.kind, more: item.more });
        truncated ||= body.truncated === true;
        if (!body.next_cursor || !body.items.length) break;
        after = body.next_cursor;
      }
      if (!cancelled) setStored({ lines, count: lines.length, truncated });
    };
    load().catch(() => !cancelled && setNote("No stored log for this node yet."));
    return () => {
      cancelled = true;
    };
  }, [api, runId, nodeId, live]);
  const shown = live > 0 || !stored ? log : stored;
  if (!shown || shown.count === 0) return <p className="muted" data-testid="log-empty">{note ?? "No log lines yet; they appear here as the node writes them."}</p>;
  const raw = <VirtualLog lines={shown.lines} count={shown.count} truncated={shown.truncated} />;
  return nodeType === "agent" ? <AgentLog log={shown} rawLines={raw} /> : raw;
}
