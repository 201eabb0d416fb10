// The tenant's secrets by name (#/secrets): admins create, set a new value ("rotate") and delete them; values go in
// and never come back out (docs/security.md). Other roles see the names.
import { useRef, useState } from "react";
import { describeError } from "../../api/client";
import type { SecretInfo } from "../../api/admin";
import { useSession } from "../../session";
import { allows } from "../../state/roles";
import { SecretValueInput } from "./SecretValueInput";
import { useAdminApi, useMe, useResource } from "./useAdmin";

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

export function SecretsPage() {
  const { api } = useSession();
  const admin = useAdminApi();
  const me = useMe(api);
  const secrets = useResource(() => admin.secrets(), [admin]);
  const isAdmin = allows(me?.role, "admin");
  const [status, setStatus] = useState<string | null>(null);
  const reencrypt = () =>
    void admin
      .reencryptSecrets()
      .then((r) => setStatus(`Re-encrypted ${r.rotated} secret(s) under the current key.`))
      .catch((exc) => setStatus(describeError(exc)));
  return (
    <div className="content admin-page">
      <h2>Secrets</h2>
      <p className="muted">
        Nodes refer to a secret as <code>{"{{ secrets.NAME }}"}</code> (HTTP node URL, headers, query and body; an agent's
        <code> api_key</code>). Values are write-only: once saved, no page and no API answer shows them again.
      </p>
      {isAdmin && <NewSecret onSaved={(name) => (setStatus(`Secret ${name} saved.`), secrets.reload())} />}
      {me && !isAdmin && <p className="muted">Only admins set and delete secrets; your key is a {me.role}.</p>}
      {status && <div className="notice" role="status" data-testid="secrets-status">{status}</div>}
      {secrets.error && <div className="alert" role="alert">{secrets.error}</div>}
      <table className="list" aria-label="secrets" data-testid="secrets-list">
        <thead>
          <tr><th scope="col">name</th><th scope="col">value</th><th scope="col">last set</th><th scope="col">by key</th>{isAdmin && <th scope="col">actions</th>}</tr>
        </thead>
        <tbody>
          {secrets.data?.items.map((secret) => (
            <SecretRow key={secret.name} secret={secret} isAdmin={isAdmin} onChange={(text) => (setStatus(text), secrets.reload())} />
          ))}
        </tbody>
      </table>
      {secrets.data?.items.length === 0 && <p className="muted">No secrets yet.</p>}
      {isAdmin && (
        <p>
          <button type="button" onClick={reencrypt}>Re-encrypt all under the current key</button>{" "}
          <span className="muted">after putting a new key first in AOB_SECRETS_KEYS</span>
        </p>
      )}
    </div>
  );
}

function NewSecret({ onSaved }: { onSaved: (name: string) => void }) {
  const admin = useAdminApi();
  const value = useRef<HTMLInputElement>(null);
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const save = async (event: React.FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = event.currentTarget;
    if (!NAME.test(name)) return setError("name: letters, digits and '_', not starting with a digit, at most 64");
    setError(null);
    try {
      await admin.putSecret(name, value.current?.value ?? "");
      form.reset();
      onSaved(name);
      setName("");
    } catch (exc) {
      setError(describeError(exc));
    } finally {
      if (value.current) value.current.value = "";
    }
  };
  return (
    <form className="admin-form row" onSubmit={save} aria-label="new secret" data-testid="new-secret">
      <div className="field">
        <label htmlFor="secret-name">Name</label>
        <input id="secret-name" value={name} autoComplete="off" onChange={(e) => setName(e.target.value)} aria-describedby="secret-name-hint" />
        <div className="hint" id="secret-name-hint">e.g. GITHUB_TOKEN</div>
      </div>
      <SecretValueInput id="secret-value" label="Value (write-only)" ref={value} />
      <button className="primary" type="submit">Save secret</button>
      {error && <div className="alert" role="alert">{error}</div>}
    </form>
  );
}

function SecretRow({ secret, isAdmin, onChange }: { secret: SecretInfo; isAdmin: boolean; onChange: (status: string) => void }) {
  const admin = useAdminApi();
  const value = useRef<HTMLInputElement>(null);
  const [mode, setMode] = useState<"idle" | "rotate" | "delete">("idle");
  const [error, setError] = useState<string | null>(null);
  const rotate = async (event: React.FormEvent) => {
    event.preventDefault();
    try {
      await admin.putSecret(secret.name, value.current?.value ?? "");
      setMode("idle");
      onChange(`Secret ${secret.name} has a new value.`);
    } catch (exc) {
      setError(describeError(exc));
    } finally {
      if (value.current) value.current.value = "";
    }
  };
  const remove = () =>
    void admin
      .deleteSecret(secret.name)
      .then(() => onChange(`Secret ${secret.name} deleted.`))
      .catch((exc) => setError(describeError(exc)));
  return (
    <tr data-testid={`secret-${secret.name}`}>
      <td><code>{secret.name}</code></td>
      <td className="muted"><span aria-hidden="true">••••••••</span><span className="sr-only">hidden</span></td>
      <td className="muted">{new Date(secret.updated_at).toLocaleString()}</td>
      <td className="muted">{secret.updated_by ?? ""}</td>
      {isAdmin && (
        <td>
          {mode === "idle" && (
            <div className="row">
              <button type="button" onClick={() => setMode("rotate")} aria-label={`Rotate ${secret.name}`}>Rotate</button>
              <button type="button" className="danger" onClick={() => setMode("delete")} aria-label={`Delete ${secret.name}`}>Delete</button>
            </div>
          )}
          {mode === "rotate" && (
            <form className="row" onSubmit={rotate} aria-label={`new value of ${secret.name}`}>
              <SecretValueInput id={`rotate-${secret.name}`} label={`New value of ${secret.name}`} ref={value} />
              <button type="submit" className="primary">Save new value</button>
              <button type="button" onClick={() => setMode("idle")}>Cancel</button>
            </form>
          )}
          {mode === "delete" && (
            <div className="row">
              <span>Nodes that use it will fail.</span>
              <button type="button" className="danger" onClick={remove}>Delete {secret.name}</button>
              <button type="button" onClick={() => setMode("idle")}>Keep</button>
            </div>
          )}
          {error && <div className="alert" role="alert">{error}</div>}
        </td>
      )}
    </tr>
  );
}
