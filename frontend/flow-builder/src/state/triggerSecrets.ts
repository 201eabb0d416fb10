// A webhook trigger's secrets as the page offers them: rotate adds a second secret beside the current one (two at
// most), retire keeps only the newest (docs/triggers.md, "Rotating without downtime").
import type { Trigger } from "../api/admin";

export const MAX_ACTIVE_SECRETS = 2;

export type SecretActions = { canRotate: boolean; canRetire: boolean; newestId: string | null; hint: string };

/** What may be done with ``trigger``'s secrets now, and a sentence saying where the rotation stands. */
export function secretActions(trigger: Pick<Trigger, "secrets">): SecretActions {
  const count = trigger.secrets.length;
  const newestId = count ? trigger.secrets[count - 1].id : null;
  const hint =
    count >= MAX_ACTIVE_SECRETS
      ? "Two secrets are active: once the sender uses the newest, retire the older one."
      : "One secret is active: rotate to add a second one without downtime.";
  return { canRotate: count < MAX_ACTIVE_SECRETS, canRetire: count > 1, newestId, hint };
}

/** The trigger's full URL on the API at ``origin`` (the page's own origin: the UI is served by the API). */
export function hookUrl(origin: string, trigger: Pick<Trigger, "hook_path">): string {
  return origin.replace(/\/+$/, "") + trigger.hook_path;
}

/** A command line that delivers ``{}`` to the trigger (HMAC senders sign instead; see docs/triggers.md). */
export function exampleCall(url: string, trigger: Pick<Trigger, "auth">): string {
  if (trigger.auth === "bearer") return `curl -X POST ${url} -H "Authorization: Bearer $SECRET" -H "Content-Type: application/json" -d '{}'`;
  return `X-Aob-Timestamp: <unix seconds>; X-Aob-Signature: sha256=HMAC-SHA256(secret, "<timestamp>.<body>") to POST ${url}`;
}
