// A write-only secret value: an uncontrolled password field, so the value lives only in the input element (never
// in React state or a DOM attribute), and is cleared as soon as it has been sent.
import { forwardRef } from "react";

export const SecretValueInput = forwardRef<HTMLInputElement, { id: string; label: string; describedBy?: string }>(
  function SecretValueInput({ id, label, describedBy }, ref) {
    return (
      <div className="field">
        <label htmlFor={id}>{label}</label>
        <input
          id={id}
          ref={ref}
          type="password"
          autoComplete="new-password"
          spellCheck={false}
          minLength={8}
          maxLength={65536}
          required
          aria-describedby={describedBy}
        />
      </div>
    );
  },
);
