import { useCallback, useMemo, useState } from "react";
import { Api, ApiError, checkKey, describeError } from "./api/client";
import { ApiKeysPage } from "./components/admin/ApiKeysPage";
import { AutomationPage } from "./components/admin/AutomationPage";
import { NotificationsPage } from "./components/admin/NotificationsPage";
import { SecretsPage } from "./components/admin/SecretsPage";
import { useMe } from "./components/admin/useAdmin";
import { ApprovalsPage } from "./components/ApprovalsPage";
import { Builder } from "./components/Builder";
import { RunsPage } from "./components/RunsPage";
import { RunView } from "./components/RunView";
import { useTenant } from "./net/tenant";
import { SessionContext, storedKey, storeKey, useRoute, useSession } from "./session";
import { allows } from "./state/roles";

export function App() {
  const [key, setKey] = useState<string | null>(storedKey);
  const [message, setMessage] = useState<string | null>(null);
  const logout = useCallback((reason?: string) => {
    storeKey(null);
    setKey(null);
    setMessage(reason ?? null);
  }, []);
  const api = useMemo(
    () => (key ? new Api(key, (error: ApiError) => logout(describeError(error))) : null),
    [key, logout],
  );
  if (!api) {
    return (
      <Login
        message={message}
        onLogin={(k) => {
          storeKey(k);
          setMessage(null);
          setKey(k);
        }}
      />
    );
  }
  return (
    <SessionContext.Provider value={{ api, logout }}>
      <Shell />
    </SessionContext.Provider>
  );
}

function Login({ message, onLogin }: { message: string | null; onLogin: (key: string) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(message);
  const [busy, setBusy] = useState(false);
  const submit = async (event: React.FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await checkKey(key.trim());
      onLogin(key.trim());
    } catch (exc) {
      setError(describeError(exc));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form className="login" onSubmit={submit}>
      <h1>aob flow builder</h1>
      <p className="muted">Log in with an API key (`aob up` prints the admin key). It is kept for this tab only.</p>
      <div className="field">
        <label htmlFor="api-key">API key</label>
        <input id="api-key" type="password" autoComplete="off" value={key} onChange={(e) => setKey(e.target.value)} autoFocus />
      </div>
      {error && <div className="alert" role="alert">{error}</div>}
      <button className="primary" type="submit" disabled={busy || !key.trim()}>
        {busy ? "Checking…" : "Log in"}
      </button>
    </form>
  );
}

function Shell() {
  const { api, logout } = useSession();
  const route = useRoute();
  const tenant = useTenant(api);
  const me = useMe(api);
  const [section, id] = route;
  const link = (href: string, label: string, on: boolean, extra?: React.ReactNode) => (
    <a href={href} className={on ? "active" : ""}>
      {label}
      {extra}
    </a>
  );
  const pending = tenant.approvals.length;
  let page: React.ReactNode;
  if (section === "runs" && id) page = <RunView key={id} runId={id} />;
  else if (section === "runs") page = <RunsPage />;
  else if (section === "approvals") page = <ApprovalsPage />;
  else if (section === "automation") page = <AutomationPage workflowId={id ?? null} />;
  else if (section === "secrets") page = <SecretsPage />;
  else if (section === "notifications") page = <NotificationsPage />;
  else if (section === "keys") page = <ApiKeysPage />;
  else page = <Builder key={id ?? "new"} workflowRef={section === "builder" && id && id !== "new" ? id : null} />;
  return (
    <div className="app">
      <header className="topbar">
        <span className="brand">aob</span>
        <nav>
          {link("#/builder", "Builder", !section || section === "builder")}
          {link("#/runs", "Runs", section === "runs")}
          {link("#/approvals", "Approvals", section === "approvals", pending ? <span className="count" data-testid="approvals-count">{pending}</span> : null)}
          {link("#/automation", "Schedules & triggers", section === "automation")}
          {link("#/secrets", "Secrets", section === "secrets")}
          {link("#/notifications", "Notifications", section === "notifications")}
          {allows(me?.role, "admin") && link("#/keys", "API keys", section === "keys")}
        </nav>
        <span className="spacer" />
        <span className="muted" title="tenant feed">feed: {tenant.feed}</span>
        <button onClick={() => logout()}>Log out</button>
      </header>
      <main className="page">{page}</main>
    </div>
  );
}
