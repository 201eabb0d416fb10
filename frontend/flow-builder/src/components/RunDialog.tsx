// Start a run of a saved version with inputs from a form generated from the workflow's input schema.
import { useState } from "react";
import { describeError } from "../api/client";
import type { JsonSchema, Run } from "../api/types";
import { go, useSession } from "../session";
import { schemaToFields } from "../state/schemaForm";
import { SchemaFields } from "./SchemaFields";

export function RunDialog(props: { workflow: string; version: number; inputs: JsonSchema | undefined; onClose: () => void }) {
  const { api } = useSession();
  const [inputs, setInputs] = useState<Record<string, unknown>>({});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const missing = schemaToFields(props.inputs).filter((f) => f.required && inputs[f.name] === undefined).map((f) => f.name);
  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      const run = await api.post<Run>("/api/v1/runs", { workflow_id: props.workflow, version: props.version, inputs });
      props.onClose();
      go("runs", run.id);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="modal-back" onClick={props.onClose}>
      <div className="modal" role="dialog" aria-label="start a run" onClick={(e) => e.stopPropagation()}>
        <h2>
          Run {props.workflow} v{props.version}
        </h2>
        <SchemaFields idPrefix="run-input" schema={props.inputs} value={inputs} onChange={setInputs} />
        {missing.length > 0 && <p className="muted">Required: {missing.join(", ")}</p>}
        {error && <div className="alert" role="alert">{error}</div>}
        <div className="row" style={{ justifyContent: "flex-end" }}>
          <button onClick={props.onClose}>Cancel</button>
          <button className="primary" onClick={() => void start()} disabled={busy || missing.length > 0}>
            Start run
          </button>
        </div>
      </div>
    </div>
  );
}
