// Every run of the tenant, newest first, updated live from /ws/tenant.
import { useSession } from "../session";
import { useTenant } from "../net/tenant";

export function RunsPage() {
  const { api } = useSession();
  const tenant = useTenant(api);
  return (
    <div className="content">
      <h2>
        Runs <span className="muted">· live ({tenant.feed})</span>
      </h2>
      {tenant.error && <div className="alert">{tenant.error}</div>}
      <table className="list" data-testid="runs-list">
        <thead>
          <tr><th>run</th><th>workflow</th><th>version</th><th>status</th><th>patches</th><th>created</th></tr>
        </thead>
        <tbody>
          {tenant.runs.map((run) => (
            <tr key={run.id} data-testid={`run-row-${run.id}`}>
              <td><a href={`#/runs/${run.id}`}><code>{run.id}</code></a></td>
              <td>{run.workflow_name}</td>
              <td>{run.version || ""}</td>
              <td className={`status-${run.status}`}><span className="pill">{run.status}</span></td>
              <td>{run.patches ?? ""}</td>
              <td className="muted">{new Date(run.created_at).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {tenant.runs.length === 0 && <p className="muted">No runs yet: build a workflow and press Run.</p>}
    </div>
  );
}
