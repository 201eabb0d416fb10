// Pending approvals of the tenant; deciding one removes it here, in the count and on its node at once.
import { useState } from "react";
import { describeError } from "../api/client";
import type { Approval } from "../api/types";
import { notifyState, optIn, optOut, type NotifyState } from "../net/desktopNotify";
import { tenant, useTenant } from "../net/tenant";
import { useSession } from "../session";

export function ApprovalCard({ approval }: { approval: Pick<Approval, "id" | "run_id" | "node_id" | "title"> & { description?: string | null } }) {
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const decide = async (decision: "approve" | "reject") => {
    setBusy(true);
    setError(null);
    try {
      await tenant.decide(approval.id, decision, comment);
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };
  return (
    <div className="approval-card" data-testid={`approval-${approval.id}`}>
      <b>{approval.title}</b>
      {approval.description && <div>{approval.description}</div>}
      <div className="muted">
        run <a href={`#/runs/${approval.run_id}`}><code>{approval.run_id}</code></a> · node {approval.node_id}
      </div>
      <textarea rows={2} placeholder="comment (optional)" aria-label="comment" value={comment} onChange={(e) => setComment(e.target.value)} />
      {error && <div className="alert">{error}</div>}
      <div className="row" style={{ marginTop: 4 }}>
        <button className="primary" disabled={busy} onClick={() => void decide("approve")}>Approve</button>
        <button className="danger" disabled={busy} onClick={() => void decide("reject")}>Reject</button>
      </div>
    </div>
  );
}

export function ApprovalsPage() {
  const { api } = useSession();
  const state = useTenant(api);
  return (
    <div className="content" style={{ maxWidth: 720 }}>
      <h2>Pending approvals</h2>
      <p className="muted">
        Live from the tenant feed ({state.feed}): new requests appear here as they are made.
      </p>
      <NotificationOptIn />
      {state.approvals.length === 0 && <p className="muted" data-testid="no-approvals">Nothing waits for a decision.</p>}
      {state.approvals.map((a) => <ApprovalCard key={a.id} approval={a} />)}
    </div>
  );
}

function NotificationOptIn() {
  const [state, setState] = useState<NotifyState>(notifyState);
  if (state === "unsupported") return <p className="muted">This browser cannot show desktop notifications.</p>;
  if (state === "denied") {
    return <p className="muted" data-testid="notify-state">Desktop notifications are blocked for this site in the browser's settings.</p>;
  }
  return (
    <div className="row notify" data-testid="notify-state" data-state={state}>
      {state === "on" ? (
        <>
          <span>Desktop notifications are on: each new approval shows one.</span>
          <button onClick={() => setState(optOut())}>Turn off</button>
        </>
      ) : (
        <>
          <span>Get a desktop notification when an approval arrives?</span>
          <button onClick={() => void optIn().then(setState)} data-testid="notify-opt-in">Enable desktop notifications</button>
        </>
      )}
    </div>
  );
}
