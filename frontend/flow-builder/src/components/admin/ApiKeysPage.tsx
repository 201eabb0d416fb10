// API keys of the tenant (#/keys), for admins only: create one with a role (the key is shown once), revoke one.
// Other roles get a refusal here, and the API refuses them too (403).
import { useState } from "react";
import { describeError } from "../../api/client";
import type { NewApiKey, Role } from "../../api/admin";
import { useSession } from "../../session";
import { allows } from "../../state/roles";
import { Field } from "./Field";
import { OnceShown } from "./OnceShown";
import { useAdminApi, useMe, useResource } from "./useAdmin";

const ROLES: { role: Role; says: string }[] = [
  { role: "viewer", says: "reads workflows, runs and logs" },
  { role: "approver", says: "reads, and decides approvals" },
  { role: "editor", says: "also builds workflows and starts runs" },
  { role: "admin", says: "also keys, secrets and the audit log" },
];

export function ApiKeysPage() {
  const { api } = useSession();
  const me = useMe(api);
  if (!me) return <div className="content"><p className="muted">Loading…</p></div>;
  if (!allows(me.role, "admin")) {
    return (
      <div className="content admin-page">
        <h2>API keys</h2>
        <div className="alert" role="alert" data-testid="keys-refused">
          Only admins manage API keys. This key ({me.name}) is a {me.role}.
        </div>
      </div>
    );
  }
  return <KeysAdmin />;
}

function KeysAdmin() {
  const admin = useAdminApi();
  const keys = useResource(() => admin.keys(), [admin]);
  const [name, setName] = useState("");
  const [owner, setOwner] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const [created, setCreated] = useState<NewApiKey | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const create = async (event: React.FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      setCreated(await admin.createKey({ name: name.trim(), role, ...(owner.trim() ? { owner: owner.trim() } : {}) }));
      setName("");
      setOwner("");
      keys.reload();
    } catch (exc) {
      setError(describeError(exc));
    }
  };
  const revoke = (id: string) =>
    void admin
      .revokeKey(id)
      .then(() => (setRevoking(null), keys.reload()))
      .catch((exc) => setError(describeError(exc)));
  return (
    <div className="content admin-page">
      <h2>API keys</h2>
      <form className="admin-form row" onSubmit={create} aria-label="new API key" data-testid="new-key">
        <Field id="key-name" label="Name">
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </Field>
        <Field id="key-owner" label="Owner (optional)" hint="who holds it; keys of one owner count as one approver">
          <input value={owner} onChange={(e) => setOwner(e.target.value)} maxLength={200} />
        </Field>
        <Field id="key-role" label="Role">
          <select value={role} onChange={(e) => setRole(e.target.value as Role)}>
            {ROLES.map((r) => (
              <option key={r.role} value={r.role}>{r.role}: {r.says}</option>
            ))}
          </select>
        </Field>
        <button type="submit" className="primary">Create key</button>
      </form>
      {error && <div className="alert" role="alert">{error}</div>}
      {created && <OnceShown label={`Key ${created.name} (${created.role})`} value={created.key} onDone={() => setCreated(null)} testId="new-key" />}
      {keys.error && <div className="alert" role="alert">{keys.error}</div>}
      <table className="list" aria-label="API keys" data-testid="keys-list">
        <thead>
          <tr><th scope="col">name</th><th scope="col">owner</th><th scope="col">role</th><th scope="col">created</th><th scope="col">state</th><th scope="col">actions</th></tr>
        </thead>
        <tbody>
          {keys.data?.items.map((key) => (
            <tr key={key.id} data-testid={`key-${key.name}`}>
              <td>{key.name}</td>
              <td>{key.owner}</td>
              <td><span className="badge">{key.role}</span></td>
              <td className="muted">{new Date(key.created_at).toLocaleString()}</td>
              <td>{key.revoked_at ? <span className="badge bad">revoked</span> : <span className="badge ok">active</span>}</td>
              <td>
                {!key.revoked_at && revoking !== key.id && (
                  <button type="button" className="danger" onClick={() => setRevoking(key.id)} aria-label={`Revoke ${key.name}`}>Revoke</button>
                )}
                {revoking === key.id && (
                  <div className="row">
                    <button type="button" className="danger" onClick={() => revoke(key.id)}>Revoke {key.name} now</button>
                    <button type="button" onClick={() => setRevoking(null)}>Keep</button>
                  </div>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
