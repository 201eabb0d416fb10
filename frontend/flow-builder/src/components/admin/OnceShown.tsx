// A credential the API shows once (a trigger secret, a webhook signing secret, a new API key): shown until the
// user says it is copied, then gone from the page for good.
import { useState } from "react";

export function OnceShown({ label, value, onDone, testId }: { label: string; value: string; onDone: () => void; testId: string }) {
  const [copied, setCopied] = useState(false);
  const copy = () =>
    void navigator.clipboard
      .writeText(value)
      .then(() => setCopied(true))
      .catch(() => setCopied(false));
  return (
    <div className="notice once-shown" role="region" aria-label={label} data-testid={testId}>
      <b>{label}</b> — shown this once only; store it now.
      <div className="row">
        <code className="secret-value" data-testid={`${testId}-value`}>{value}</code>
        <button type="button" onClick={copy}>{copied ? "Copied" : "Copy"}</button>
        <button type="button" onClick={onDone}>Done</button>
      </div>
    </div>
  );
}
