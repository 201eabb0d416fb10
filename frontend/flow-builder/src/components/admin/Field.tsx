// A labelled form field whose error is announced and tied to its input (aria-invalid, aria-describedby).
import { cloneElement, type ReactElement } from "react";

type InputProps = { id?: string; "aria-invalid"?: boolean; "aria-describedby"?: string };

export function Field({ id, label, error, hint, children }: { id: string; label: string; error?: string; hint?: string; children: ReactElement<InputProps> }) {
  const described = [hint ? `${id}-hint` : null, error ? `${id}-error` : null].filter(Boolean).join(" ") || undefined;
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      {cloneElement(children, { id, "aria-invalid": error ? true : undefined, "aria-describedby": described })}
      {hint && <div className="hint" id={`${id}-hint`}>{hint}</div>}
      {error && <div className="field-error" id={`${id}-error`} role="alert">{error}</div>}
    </div>
  );
}
