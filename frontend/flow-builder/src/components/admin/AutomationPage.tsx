// Schedules and webhook triggers of one workflow (#/automation/<workflow id>), picked from the tenant's workflows.
import type { Page, Workflow } from "../../api/types";
import { useTenant } from "../../net/tenant";
import { go, useSession } from "../../session";
import { allows } from "../../state/roles";
import { ScheduleSection } from "./ScheduleSection";
import { TriggerSection } from "./TriggerSection";
import { useMe, useResource, useThrottled } from "./useAdmin";

export function AutomationPage({ workflowId }: { workflowId: string | null }) {
  const { api } = useSession();
  const me = useMe(api);
  // A fired schedule or a delivered hook starts a run: the tenant feed says so, and the lists are read again.
  const runs = useThrottled(useTenant(api).lastId);
  const workflows = useResource(() => api.get<Page<Workflow>>("/api/v1/workflows?limit=200"), [api]);
  const items = workflows.data?.items ?? [];
  const chosen = workflowId ?? items[0]?.id ?? null;
  const canWrite = allows(me?.role, "write");
  return (
    <div className="content admin-page">
      <h2>Schedules and triggers</h2>
      {workflows.error && <div className="alert" role="alert">{workflows.error}</div>}
      <div className="field narrow">
        <label htmlFor="automation-workflow">Workflow</label>
        <select id="automation-workflow" value={chosen ?? ""} onChange={(e) => go("automation", e.target.value)}>
          {items.map((w) => (
            <option key={w.id} value={w.id}>{w.name}</option>
          ))}
        </select>
      </div>
      {workflows.data && items.length === 0 && <p className="muted">No workflows yet: save one in the builder first.</p>}
      {!canWrite && me && <p className="muted">Your key is a {me.role}: you can look, but only editors and admins change schedules and triggers.</p>}
      {chosen && (
        <>
          <ScheduleSection key={`s-${chosen}`} workflowId={chosen} canWrite={canWrite} refresh={runs} />
          <TriggerSection key={`t-${chosen}`} workflowId={chosen} canWrite={canWrite} refresh={runs} />
        </>
      )}
    </div>
  );
}
