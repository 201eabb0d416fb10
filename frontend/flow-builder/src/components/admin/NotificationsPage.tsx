// Notification subscriptions of the tenant (#/notifications): subscribe, pause, delete, send a test, and each
// subscription's delivery log (docs/notifications.md).
import { useState } from "react";
import { describeError } from "../../api/client";
import type { Subscription } from "../../api/admin";
import type { Page, Workflow } from "../../api/types";
import { useTenant } from "../../net/tenant";
import { useSession } from "../../session";
import { allows } from "../../state/roles";
import { DeliveryLog } from "./DeliveryLog";
import { OnceShown } from "./OnceShown";
import { SubscriptionForm } from "./SubscriptionForm";
import { useAdminApi, useMe, useResource, useThrottled } from "./useAdmin";

export function NotificationsPage() {
  const { api } = useSession();
  const admin = useAdminApi();
  const me = useMe(api);
  const canWrite = allows(me?.role, "write");
  const subscriptions = useResource(() => admin.subscriptions(), [admin]);
  const workflows = useResource(() => api.get<Page<Workflow>>("/api/v1/workflows?limit=200"), [api]);
  const [secret, setSecret] = useState<Subscription | null>(null);
  const names = new Map((workflows.data?.items ?? []).map((w) => [w.id, w.name]));
  const create = async (body: Parameters<typeof admin.createSubscription>[0]) => {
    const created = await admin.createSubscription(body);
    if (created.secret) setSecret(created);
    subscriptions.reload();
    return created;
  };
  return (
    <div className="content admin-page">
      <h2>Notifications</h2>
      {canWrite && <SubscriptionForm workflows={workflows.data?.items ?? []} create={create} />}
      {secret?.secret && (
        <OnceShown label={`Signing secret of ${secret.target}`} value={secret.secret} onDone={() => setSecret(null)} testId="signing-secret" />
      )}
      <h3>Subscriptions</h3>
      {subscriptions.error && <div className="alert" role="alert">{subscriptions.error}</div>}
      {subscriptions.data?.items.length === 0 && <p className="muted">No subscriptions yet.</p>}
      {subscriptions.data?.items.map((sub) => (
        <SubscriptionCard key={sub.id} sub={sub} workflowName={sub.workflow_id ? names.get(sub.workflow_id) ?? sub.workflow_id : "every workflow"} canWrite={canWrite} onChange={subscriptions.reload} />
      ))}
    </div>
  );
}

function SubscriptionCard({ sub, workflowName, canWrite, onChange }: { sub: Subscription; workflowName: string; canWrite: boolean; onChange: () => void }) {
  const { api } = useSession();
  const admin = useAdminApi();
  // A run's end may have been delivered: its log is read again on tenant events.
  const runs = useThrottled(useTenant(api).lastId);
  const [testEventId, setTestEventId] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const act = (action: () => Promise<unknown>) => () =>
    void action()
      .then(onChange)
      .catch((exc) => setError(describeError(exc)));
  const sendTest = () => {
    setError(null);
    void admin
      .sendTest(sub.id)
      .then((queued) => setTestEventId(queued.event_id))
      .catch((exc) => setError(describeError(exc)));
  };
  return (
    <article className="admin-card" aria-label={`subscription ${sub.target}`} data-testid={`subscription-${sub.id}`}>
      <div className="row">
        <b>{sub.channel === "webhook" ? "Webhook" : "E-mail"}</b>
        <code>{sub.target}</code>
        <span className={`badge ${sub.paused ? "warn" : "ok"}`}>{sub.paused ? "paused" : "active"}</span>
        <span className="spacer" />
        {canWrite && <button type="button" onClick={sendTest}>Send test</button>}
        {canWrite && <button type="button" onClick={act(() => admin.pauseSubscription(sub.id, !sub.paused))}>{sub.paused ? "Resume" : "Pause"}</button>}
        {canWrite && !confirming && <button type="button" className="danger" onClick={() => setConfirming(true)}>Delete</button>}
        {confirming && (
          <>
            <button type="button" className="danger" onClick={act(() => admin.deleteSubscription(sub.id))}>Delete this subscription</button>
            <button type="button" onClick={() => setConfirming(false)}>Keep</button>
          </>
        )}
      </div>
      <div className="muted">
        {sub.events.join(", ")} · {workflowName}{sub.channel === "webhook" ? ` · ${sub.format}` : ""}
      </div>
      {error && <div className="alert" role="alert">{error}</div>}
      <h4>Delivery log</h4>
      <DeliveryLog subscriptionId={sub.id} testEventId={testEventId} refresh={runs} />
    </article>
  );
}
