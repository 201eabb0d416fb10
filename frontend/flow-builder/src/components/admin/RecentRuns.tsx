// The latest runs a schedule or a trigger started, refreshed whenever the tenant feed reports a run event.
import { useTenant } from "../../net/tenant";
import { useSession } from "../../session";
import { relativeTime } from "../../state/scheduleForm";
import { useAdminApi, useResource, useThrottled } from "./useAdmin";

const BADGE: Record<string, string> = { succeeded: "ok", failed: "bad", timed_out: "bad", cancelled: "", waiting: "warn" };

export function RunStatus({ status }: { status: string }) {
  return <span className={`badge ${BADGE[status] ?? ""}`}>{status}</span>;
}

export function RecentRuns({ source, id, label, testId }: { source: "schedule" | "trigger"; id: string; label: string; testId: string }) {
  const { api } = useSession();
  const admin = useAdminApi();
  // Any run event of the tenant may concern one of these runs: the list is read again then, not polled.
  const runs = useThrottled(useTenant(api).lastId);
  const { data, error } = useResource(() => (source === "schedule" ? admin.scheduleRuns(id) : admin.triggerRuns(id)), [admin, source, id, runs]);
  if (error) return <div className="alert" role="alert">{error}</div>;
  if (!data) return <p className="muted">Loading runs…</p>;
  if (data.items.length === 0) return <p className="muted" data-testid={testId}>No runs yet.</p>;
  const now = Date.now();
  return (
    <table className="list compact" aria-label={label} data-testid={testId}>
      <thead>
        <tr><th scope="col">run</th><th scope="col">status</th><th scope="col">started</th></tr>
      </thead>
      <tbody>
        {data.items.map((run) => (
          <tr key={run.id}>
            <td><a href={`#/runs/${run.id}`}><code>{run.id}</code></a></td>
            <td><RunStatus status={run.status} /></td>
            <td className="muted" title={run.created_at}>{relativeTime(run.created_at, now)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
