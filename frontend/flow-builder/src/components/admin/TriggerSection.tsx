// A workflow's webhook triggers: create (the secret is shown once), pause or resume, rotate to a second secret and
// retire the older one, delete; each with its URL and its last runs.
import { useState } from "react";
import { describeError } from "../../api/client";
import type { Trigger, TriggerWithSecret } from "../../api/admin";
import { exampleCall, hookUrl, secretActions } from "../../state/triggerSecrets";
import { Field } from "./Field";
import { OnceShown } from "./OnceShown";
import { RecentRuns } from "./RecentRuns";
import { useAdminApi, useResource } from "./useAdmin";

export function TriggerSection({ workflowId, canWrite, refresh }: { workflowId: string; canWrite: boolean; refresh: unknown }) {
  const admin = useAdminApi();
  const triggers = useResource(() => admin.triggers(workflowId), [admin, workflowId, refresh]);
  const [name, setName] = useState("");
  const [auth, setAuth] = useState<"hmac" | "bearer">("hmac");
  const [shown, setShown] = useState<TriggerWithSecret | null>(null);
  const [error, setError] = useState<string | null>(null);
  const create = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      setShown(await admin.createTrigger({ workflow: workflowId, auth, ...(name.trim() ? { name: name.trim() } : {}) }));
      setName("");
      triggers.reload();
    } catch (exc) {
      setError(describeError(exc));
    }
  };
  return (
    <section aria-labelledby="triggers-title" data-testid="triggers">
      <h3 id="triggers-title">Webhook triggers</h3>
      {canWrite && (
        <form className="row admin-form" onSubmit={create} aria-label="new trigger">
          <Field id="trigger-name" label="Name (optional)">
            <input value={name} onChange={(e) => setName(e.target.value)} />
          </Field>
          <Field id="trigger-auth" label="Senders authenticate with">
            <select value={auth} onChange={(e) => setAuth(e.target.value as "hmac" | "bearer")}>
              <option value="hmac">an HMAC signature</option>
              <option value="bearer">a bearer secret</option>
            </select>
          </Field>
          <button type="submit" className="primary">Create trigger</button>
        </form>
      )}
      {error && <div className="alert" role="alert">{error}</div>}
      {shown && <OnceShown label={`Secret of trigger ${shown.name}`} value={shown.secret} onDone={() => setShown(null)} testId="trigger-secret" />}
      {triggers.error && <div className="alert" role="alert">{triggers.error}</div>}
      {triggers.data?.items.length === 0 && <p className="muted">No webhook triggers for this workflow.</p>}
      {triggers.data?.items.map((trigger) => (
        <TriggerCard key={trigger.id} trigger={trigger} canWrite={canWrite} onChange={triggers.reload} onSecret={setShown} />
      ))}
    </section>
  );
}

function TriggerCard(props: { trigger: Trigger; canWrite: boolean; onChange: () => void; onSecret: (t: TriggerWithSecret) => void }) {
  const { trigger, canWrite, onChange, onSecret } = props;
  const admin = useAdminApi();
  const [error, setError] = useState<string | null>(null);
  const [confirming, setConfirming] = useState(false);
  const act = (action: () => Promise<unknown>) => () =>
    void action()
      .then(onChange)
      .catch((exc) => setError(describeError(exc)));
  const secrets = secretActions(trigger);
  const url = hookUrl(location.origin, trigger);
  return (
    <article className="admin-card" aria-label={`trigger ${trigger.name}`} data-testid={`trigger-${trigger.id}`}>
      <div className="row">
        <b>{trigger.name}</b>
        <span className={`badge ${trigger.paused ? "warn" : "ok"}`} data-testid="trigger-state">{trigger.paused ? "paused" : "active"}</span>
        <span className="muted">{trigger.auth === "hmac" ? "HMAC-signed" : "bearer secret"} · {trigger.rate_per_min}/min</span>
        <span className="spacer" />
        {canWrite && <button type="button" onClick={act(() => admin.pauseTrigger(trigger.id, !trigger.paused))}>{trigger.paused ? "Resume" : "Pause"}</button>}
        {canWrite && !confirming && <button type="button" className="danger" onClick={() => setConfirming(true)}>Delete</button>}
        {confirming && (
          <>
            <button type="button" className="danger" onClick={act(() => admin.deleteTrigger(trigger.id))}>Delete this trigger</button>
            <button type="button" onClick={() => setConfirming(false)}>Keep</button>
          </>
        )}
      </div>
      {error && <div className="alert" role="alert">{error}</div>}
      <dl className="kv">
        <dt>URL</dt>
        <dd><code data-testid="trigger-url">{url}</code></dd>
        <dt>Sender</dt>
        <dd><code className="muted">{exampleCall(url, trigger)}</code></dd>
        <dt>Secrets</dt>
        <dd>
          <ul className="plain" data-testid="trigger-secrets" aria-label={`active secrets of trigger ${trigger.name}`}>
            {trigger.secrets.map((secret) => (
              <li key={secret.id}>
                <code>{secret.id}</code> <span className="muted">since {new Date(secret.created_at).toLocaleString()}</span>
                {secret.id === secrets.newestId && trigger.secrets.length > 1 && <span className="badge">newest</span>}
              </li>
            ))}
          </ul>
          <div className="muted">{secrets.hint}</div>
          {canWrite && (
            <div className="row">
              <button type="button" disabled={!secrets.canRotate} onClick={act(async () => onSecret(await admin.rotateTrigger(trigger.id)))}>Rotate secret</button>
              <button type="button" disabled={!secrets.canRetire} onClick={act(() => admin.retireTrigger(trigger.id))}>Retire older secret</button>
            </div>
          )}
        </dd>
      </dl>
      <h4>Last runs</h4>
      <RecentRuns source="trigger" id={trigger.id} label={`last runs of trigger ${trigger.name}`} testId={`trigger-runs-${trigger.id}`} />
    </article>
  );
}
