// A subscription's delivery attempts, newest first, and where its last "send test" stands; read again while a
// delivery is pending (notifier sends are not on the tenant feed).
import { useEffect } from "react";
import { deliveryCounts, testState } from "../../state/deliveries";
import { useAdminApi, useResource } from "./useAdmin";

const BADGE = { delivered: "ok", retrying: "warn", failed: "bad" } as const;
const PENDING_REFRESH_MS = 1000;

export function DeliveryLog({ subscriptionId, testEventId, refresh }: { subscriptionId: string; testEventId: string | null; refresh: unknown }) {
  const admin = useAdminApi();
  const log = useResource(() => admin.deliveries(subscriptionId), [admin, subscriptionId, refresh]);
  const items = log.data?.items ?? [];
  const test = testEventId ? testState(items, testEventId) : null;
  const pending = test !== null && (test.state === "waiting" || test.state === "retrying");
  useEffect(() => {
    if (!pending) return;
    const timer = setTimeout(log.reload, PENDING_REFRESH_MS);
    return () => clearTimeout(timer);
  }, [pending, log.data, log.reload]);
  return (
    <div>
      {test && (
        <div className={test.state === "failed" ? "alert" : "notice"} role="status" data-testid="test-state">
          Test: {test.detail}
        </div>
      )}
      {log.error && <div className="alert" role="alert">{log.error}</div>}
      <div className="row">
        <span className="muted">{deliveryCounts(items) || "No deliveries yet."}</span>
        <button type="button" onClick={log.reload}>Refresh log</button>
      </div>
      {items.length > 0 && (
        <table className="list compact" aria-label="delivery log" data-testid={`deliveries-${subscriptionId}`}>
          <thead>
            <tr><th scope="col">when</th><th scope="col">event</th><th scope="col">run</th><th scope="col">attempt</th><th scope="col">status</th><th scope="col">answer</th></tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.id} data-testid={`delivery-${d.event_type}`}>
                <td className="muted">{new Date(d.created_at).toLocaleTimeString()}</td>
                <td>{d.event_type}</td>
                <td>{d.run_id ? <a href={`#/runs/${d.run_id}`}><code>{d.run_id}</code></a> : <span className="muted">—</span>}</td>
                <td>{d.attempt}</td>
                <td><span className={`badge ${BADGE[d.status]}`}>{d.status}</span></td>
                <td className="muted">{d.response_code ?? ""} {d.error ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
