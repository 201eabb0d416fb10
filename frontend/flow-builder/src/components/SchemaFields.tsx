// Inputs generated from a JSON Schema (node configs, run inputs); each edit is parsed back to JSON at once.
import { useEffect, useState } from "react";
import type { JsonSchema } from "../api/types";
import { formatValue, parseValue, schemaToFields, type FormField } from "../state/schemaForm";

type Props = {
  schema: JsonSchema | undefined;
  value: Record<string, unknown>;
  onChange: (value: Record<string, unknown>) => void;
  hints?: string[];
  idPrefix: string;
};

export function SchemaFields({ schema, value, onChange, hints = [], idPrefix }: Props) {
  const fields = schemaToFields(schema);
  if (!fields.length) return <p className="muted">Nothing to configure.</p>;
  return (
    <div>
      {hints.length > 0 && (
        <div className="field">
          <span className="hint">Templates (click to copy):</span>
          <div className="chips">
            {hints.map((hint) => (
              <span key={hint} className="chip" onClick={() => void navigator.clipboard?.writeText(hint).catch(() => {})}>
                {hint}
              </span>
            ))}
          </div>
        </div>
      )}
      {fields.map((field) => (
        <FieldInput
          key={field.name}
          field={field}
          id={`${idPrefix}-${field.name}`}
          value={value[field.name]}
          onChange={(next) => {
            const copy = { ...value };
            if (next === undefined) delete copy[field.name];
            else copy[field.name] = next;
            onChange(copy);
          }}
        />
      ))}
    </div>
  );
}

function FieldInput({ field, id, value, onChange }: { field: FormField; id: string; value: unknown; onChange: (v: unknown) => void }) {
  const [raw, setRaw] = useState<string | boolean>(formatValue(field, value));
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    // Show outside changes (another node selected, an import) without clobbering what is being typed.
    const parsed = parseValue(field, raw);
    if (JSON.stringify(parsed.value) !== JSON.stringify(value)) setRaw(formatValue(field, value));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  const edit = (next: string | boolean) => {
    setRaw(next);
    const parsed = parseValue(field, next);
    setError(parsed.error);
    if (!parsed.error) onChange(parsed.value);
  };
  const placeholder = field.defaultValue !== undefined && field.defaultValue !== null ? `default: ${JSON.stringify(field.defaultValue)}` : "";
  let input: React.ReactNode;
  if (field.kind === "boolean") {
    input = <input id={id} type="checkbox" style={{ width: "auto" }} checked={Boolean(raw)} onChange={(e) => edit(e.target.checked)} />;
  } else if (field.kind === "enum") {
    input = (
      <select id={id} value={String(raw)} onChange={(e) => edit(e.target.value)}>
        <option value="">{placeholder || "(unset)"}</option>
        {field.options?.map((o) => <option key={o} value={o}>{o}</option>)}
      </select>
    );
  } else if (field.kind === "text" || field.kind === "json") {
    input = <textarea id={id} rows={field.kind === "json" ? 4 : 3} value={String(raw)} placeholder={placeholder} onChange={(e) => edit(e.target.value)} />;
  } else {
    input = <input id={id} value={String(raw)} placeholder={placeholder} onChange={(e) => edit(e.target.value)} />;
  }
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label htmlFor={id}>
        {field.label}
        {field.required && " *"}
      </label>
      {input}
      {field.description && <div className="hint">{field.description}</div>}
      {field.kind === "json" && <div className="hint">JSON; strings may hold templates</div>}
      {field.kind === "list" && <div className="hint">comma-separated{field.options ? `: ${field.options.join(", ")}` : ""}</div>}
      {error && <div className="errors">{error}</div>}
    </div>
  );
}
