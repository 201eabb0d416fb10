// The run's timeline: one row per node, one bar per attempt, its queued part lighter than its running part.
import { useEffect, useMemo, useState } from "react";
import { computeTimeline, formatMs, type AttemptsView, type TimelineBar } from "../state/attempts";

// Open attempts grow with the clock while the run is live.
const TICK_MS = 500;

export function RunTimeline({ attempts, live, onSelect }: { attempts: AttemptsView; live: boolean; onSelect: (nodeId: string) => void }) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    if (!live) return;
    const timer = setInterval(() => setNow(Date.now()), TICK_MS);
    return () => clearInterval(timer);
  }, [live]);
  const timeline = useMemo(() => computeTimeline(attempts, now), [attempts, now]);
  if (!timeline.rows.length) return <p className="muted">No node has been queued yet.</p>;
  const span = Math.max(timeline.spanMs, 1);
  const pct = (ms: number) => `${(ms / span) * 100}%`;
  return (
    <div className="gantt" data-testid="run-timeline">
      <div className="gantt-scale muted" aria-hidden="true">
        <span>0</span>
        <span>{formatMs(span / 2)}</span>
        <span>{formatMs(span)}</span>
      </div>
      <ul aria-label="node attempts over time">
        {timeline.rows.map((row) => (
          <li key={row.nodeId} className="gantt-row">
            <button className="gantt-label" onClick={() => onSelect(row.nodeId)} title={`show ${row.nodeId}`}>
              {row.nodeId}
            </button>
            <div className="gantt-track">
              {row.bars.map((bar) => (
                <div
                  key={`${bar.attempt.epoch}:${bar.attempt.attempt}`}
                  className={`gantt-bar status-${bar.attempt.status}`}
                  style={{ left: pct(bar.queued), width: pct(Math.max(bar.end - bar.queued, span / 500)) }}
                  role="img"
                  aria-label={describe(bar)}
                  title={describe(bar)}
                  data-testid={`bar-${row.nodeId}-${bar.attempt.epoch}-${bar.attempt.attempt}`}
                >
                  <div className="gantt-queue" style={{ width: `${((bar.started - bar.queued) / Math.max(bar.end - bar.queued, 1)) * 100}%` }} />
                </div>
              ))}
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}

function describe(bar: TimelineBar): string {
  const a = bar.attempt;
  const epoch = a.epoch ? ` (after resume ${a.epoch})` : "";
  const ran = bar.open && a.status !== "queued" ? "running for" : "ran";
  return (
    `${a.nodeId} attempt ${a.attempt}${epoch}: ${a.status}; queued ${formatMs(bar.started - bar.queued)}, ` +
    `${ran} ${formatMs(bar.end - bar.started)}; from +${formatMs(bar.queued)}`
  );
}
