// What a user does with a run: cancel it while live; once ended, resume it (whole, or from a node, with edited
// inputs) or run it again as a new run with the same or edited inputs.
import { useEffect, useRef, useState } from "react";
import { describeError } from "../api/client";
import type { Definition, JsonSchema, Run } from "../api/types";
import { go, useSession } from "../session";
import { schemaToFields } from "../state/schemaForm";
import { SchemaFields } from "./SchemaFields";

export type ActionDialog = { mode: "resume"; fromNode: string | null } | { mode: "again" };

type DialogProps = { run: Run; definition: Definition | null; onClose: () => void };

export function ResumeDialog(props: DialogProps & { fromNode: string | null; onResumed: () => void }) {
  const { run, definition, fromNode, onClose } = props;
  const { api } = useSession();
  const succeeded = run.status === "succeeded";
  const nodes = definition?.nodes.map((n) => n.id) ?? [];
  const [from, setFrom] = useState<string>(fromNode ?? (succeeded ? (nodes[0] ?? "") : ""));
  const [inputs, setInputs] = useState<Record<string, unknown>>(run.inputs ?? {});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const changed = JSON.stringify(inputs) !== JSON.stringify(run.inputs ?? {});
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const body: { from_node?: string; inputs?: Record<string, unknown> } = {};
      if (from) body.from_node = from;
      if (changed) body.inputs = inputs;
      await api.post(`/api/v1/runs/${encodeURIComponent(run.id)}/resume`, body);
      props.onResumed();
      onClose();
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };
  return (
    <Modal label="resume the run" onClose={onClose}>
      <h2>Resume run</h2>
      <p className="muted">
        The run goes on in place: nodes that succeeded keep their outputs; the failed and unfinished ones
        {from ? ", and the chosen node with everything after it," : ""} run again.
      </p>
      <div className="field">
        <label htmlFor="resume-from">Start from</label>
        <select id="resume-from" value={from} onChange={(e) => setFrom(e.target.value)}>
          {!succeeded && <option value="">the failed and unfinished nodes</option>}
          {nodes.map((id) => <option key={id} value={id}>node {id} (and what follows it)</option>)}
        </select>
      </div>
      <h3>Inputs</h3>
      <InputsEditor idPrefix="resume-input" schema={definition?.inputs} value={inputs} onChange={setInputs} />
      {changed && (
        <p className="notice" role="status">
          The edited inputs replace the run's inputs for every node that runs from now on.
        </p>
      )}
      {error && <div className="alert" role="alert">{error}</div>}
      <div className="row" style={{ justifyContent: "flex-end" }}>
        <button onClick={onClose}>Cancel</button>
        <button className="primary" onClick={() => void submit()} disabled={busy || (succeeded && !from)} data-testid="resume-submit">
          Resume
        </button>
      </div>
    </Modal>
  );
}

export function RunAgainDialog({ run, definition, onClose }: DialogProps) {
  const { api } = useSession();
  const [inputs, setInputs] = useState<Record<string, unknown>>(run.inputs ?? {});
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async () => {
    setBusy(true);
    setError(null);
    try {
      const started = await api.post<Run>("/api/v1/runs", { workflow_id: run.workflow_id, version: run.version, inputs });
      onClose();
      go("runs", started.id);
    } catch (e) {
      setError(describeError(e));
      setBusy(false);
    }
  };
  return (
    <Modal label="run again" onClose={onClose}>
      <h2>
        Run {run.workflow_name} v{run.version} again
      </h2>
      <p className="muted">A new run of the same version; this run stays as it is.</p>
      <InputsEditor idPrefix="again-input" schema={definition?.inputs} value={inputs} onChange={setInputs} />
      {error && <div className="alert" role="alert">{error}</div>}
      <div className="row" style={{ justifyContent: "flex-end" }}>
        <button onClick={onClose}>Cancel</button>
        <button className="primary" onClick={() => void submit()} disabled={busy} data-testid="again-submit">
          Start run
        </button>
      </div>
    </Modal>
  );
}

/** A form from the inputs schema; without one (or with fields it does not describe), the inputs as JSON. */
function InputsEditor(props: { idPrefix: string; schema: JsonSchema | undefined; value: Record<string, unknown>; onChange: (v: Record<string, unknown>) => void }) {
  const fields = schemaToFields(props.schema);
  const [raw, setRaw] = useState(() => JSON.stringify(props.value, null, 2));
  const [error, setError] = useState<string | null>(null);
  if (fields.length) return <SchemaFields idPrefix={props.idPrefix} schema={props.schema} value={props.value} onChange={props.onChange} />;
  const id = `${props.idPrefix}-json`;
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label htmlFor={id}>Inputs (JSON object)</label>
      <textarea
        id={id}
        rows={6}
        value={raw}
        onChange={(e) => {
          setRaw(e.target.value);
          try {
            const parsed: unknown = JSON.parse(e.target.value || "{}");
            if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("expected a JSON object");
            setError(null);
            props.onChange(parsed as Record<string, unknown>);
          } catch (exc) {
            setError(exc instanceof Error ? exc.message : String(exc));
          }
        }}
      />
      {error && <div className="errors">{error}</div>}
    </div>
  );
}

function Modal({ label, onClose, children }: { label: string; onClose: () => void; children: React.ReactNode }) {
  const dialog = useRef<HTMLDivElement>(null);
  // Keyboard and screen-reader users land in the dialog, where Escape closes it.
  useEffect(() => dialog.current?.focus(), []);
  return (
    <div className="modal-back" onClick={onClose} onKeyDown={(e) => e.key === "Escape" && onClose()}>
      <div ref={dialog} tabIndex={-1} className="modal" role="dialog" aria-modal="true" aria-label={label} onClick={(e) => e.stopPropagation()}>
        {children}
      </div>
    </div>
  );
}
