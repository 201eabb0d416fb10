// Desktop notifications of approvals (the Notification API), only after the user opted in on the approvals page.
import type { Approval } from "../api/types";

const OPT_IN = "aob.notifyApprovals";

export type NotifyState = "unsupported" | "off" | "on" | "denied";

export function notifyState(): NotifyState {
  if (typeof Notification === "undefined") return "unsupported";
  if (Notification.permission === "denied") return "denied";
  return Notification.permission === "granted" && localStorage.getItem(OPT_IN) === "1" ? "on" : "off";
}

/** Ask the browser's permission (it asks the user once) and remember the opt-in; resolves to the new state. */
export async function optIn(): Promise<NotifyState> {
  if (typeof Notification === "undefined") return "unsupported";
  const permission = await Notification.requestPermission();
  if (permission === "granted") localStorage.setItem(OPT_IN, "1");
  return notifyState();
}

export function optOut(): NotifyState {
  localStorage.removeItem(OPT_IN);
  return notifyState();
}

/** Show ``approval`` as a desktop notification when opted in; a click opens its run. */
export function notifyApproval(approval: Approval): void {
  if (notifyState() !== "on") return;
  const notification = new Notification(`Approval needed: ${approval.title}`, {
    body: `run ${approval.run_id} · node ${approval.node_id}`,
    tag: `aob-approval-${approval.id}`,
  });
  notification.onclick = () => {
    window.focus();
    location.hash = `#/runs/${encodeURIComponent(approval.run_id)}`;
  };
}
