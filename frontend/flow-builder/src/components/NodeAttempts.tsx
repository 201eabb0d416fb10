// One node's attempts, oldest first: status, queue and run time, worker and error of each.
import type { ChildRun } from "../api/types";
import { formatMs, type Attempt } from "../state/attempts";

export function NodeAttempts({ attempts }: { attempts: Attempt[] }) {
  if (!attempts.length) return <p className="muted">Not queued yet.</p>;
  return (
    <ol className="attempts" data-testid="node-attempts">
      {attempts.map((a) => {
        const queued = a.queueMs ?? (a.queuedTs !== undefined && a.startedTs !== undefined ? a.startedTs - a.queuedTs : undefined);
        const ran = a.execMs ?? (a.startedTs !== undefined && a.endedTs !== undefined ? a.endedTs - a.startedTs : undefined);
        return (
          <li key={`${a.epoch}:${a.attempt}`} className={`status-${a.status}`} data-testid={`attempt-${a.epoch}-${a.attempt}`}>
            <div className="row">
              <b>attempt {a.attempt}</b>
              {a.epoch > 0 && <span className="muted">after resume {a.epoch}</span>}
              <span className="pill">{a.status}</span>
            </div>
            <div className="muted">
              queued {formatMs(queued)} · ran {formatMs(ran)}
              {a.workerId ? ` · ${a.workerId}` : ""}
            </div>
            {a.error !== undefined && a.error !== null && <pre className="attempt-error">{errorText(a.error)}</pre>}
          </li>
        );
      })}
    </ol>
  );
}

function errorText(error: unknown): string {
  if (error && typeof error === "object" && "message" in error) {
    const e = error as { type?: string; message?: unknown };
    return `${e.type ? `${e.type}: ` : ""}${String(e.message)}`;
  }
  return typeof error === "string" ? error : JSON.stringify(error, null, 2);
}

/** Links to child runs (of one node, or of the whole run), each with its status. */
export function ChildRuns({ children, showNode }: { children: ChildRun[]; showNode: boolean }) {
  if (!children.length) return null;
  return (
    <ul className="children" data-testid="child-runs">
      {children.map((child) => (
        <li key={child.id} className={`status-${child.status}`}>
          <a href={`#/runs/${encodeURIComponent(child.id)}`}><code>{child.id}</code></a>{" "}
          <span className="pill">{child.status}</span>{" "}
          <span className="muted">
            {child.workflow_name ?? "inline body"}
            {showNode && child.parent_node_id ? ` · node ${child.parent_node_id}` : ""}
          </span>
        </li>
      ))}
    </ul>
  );
}
