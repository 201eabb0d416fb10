// The builder's side panel: the selected node's form, the selected edge's label, or the workflow's own fields.
import { useEffect, useState } from "react";
import type { JsonSchema, NodeSpec, Validation } from "../api/types";
import { edgeLabel, upstreamOf, type DefinitionMeta, type FlowEdge, type FlowNode } from "../state/graph";
import { templateHints } from "../state/schemaForm";
import { SchemaFields } from "./SchemaFields";

type SetState<T> = (update: (current: T) => T) => void;

function Messages({ errors, warnings = [] }: { errors: string[]; warnings?: string[] }) {
  return (
    <>
      {errors.length > 0 && <ul className="errors" data-testid="pinned-errors">{errors.map((e) => <li key={e}>{e}</li>)}</ul>}
      {warnings.length > 0 && <ul className="warnings">{warnings.map((w) => <li key={w}>{w}</li>)}</ul>}
    </>
  );
}

export function NodeEditor(props: {
  node: FlowNode;
  nodes: FlowNode[];
  edges: FlowEdge[];
  inputs: JsonSchema | undefined;
  schema: JsonSchema | undefined;
  errors: string[];
  warnings: string[];
  setNodes: SetState<FlowNode[]>;
  setEdges: SetState<FlowEdge[]>;
  onDelete: () => void;
}) {
  const { node, edges, schema, errors, warnings, setNodes, setEdges } = props;
  const spec = node.data.spec;
  const [idDraft, setIdDraft] = useState(node.id);
  useEffect(() => setIdDraft(node.id), [node.id]);
  const update = (patch: Partial<NodeSpec>) =>
    setNodes((current) => current.map((n) => (n.id === node.id ? { ...n, data: { ...n.data, spec: { ...n.data.spec, ...patch } } } : n)));
  const rename = () => {
    const next = idDraft.trim();
    if (!next || next === node.id || props.nodes.some((n) => n.id === next)) return setIdDraft(node.id);
    setNodes((current) => current.map((n) => (n.id === node.id ? { ...n, id: next, data: { ...n.data, spec: { ...n.data.spec, id: next } } } : n)));
    setEdges((current) =>
      current.map((e) => ({ ...e, source: e.source === node.id ? next : e.source, target: e.target === node.id ? next : e.target })),
    );
  };
  return (
    <div data-testid="node-editor">
      <div className="row">
        <h2 style={{ flex: 1 }}>{spec.type} node</h2>
        <button className="danger" onClick={props.onDelete} title="Delete">Delete</button>
      </div>
      <Messages errors={errors} warnings={warnings} />
      <div className="field">
        <label htmlFor="node-id">Id</label>
        <input id="node-id" value={idDraft} onChange={(e) => setIdDraft(e.target.value)} onBlur={rename} onKeyDown={(e) => e.key === "Enter" && rename()} />
      </div>
      <div className="field">
        <label htmlFor="node-name">Display name</label>
        <input id="node-name" value={spec.name ?? ""} onChange={(e) => update({ name: e.target.value || undefined })} />
      </div>
      <div className="row">
        <div className="field" style={{ flex: 1 }}>
          <label htmlFor="node-join">Join</label>
          <select id="node-join" value={spec.join ?? "all"} onChange={(e) => update({ join: e.target.value === "any" ? "any" : undefined })}>
            <option value="all">all</option>
            <option value="any">any</option>
          </select>
        </div>
        <div className="field" style={{ flex: 1 }}>
          <label htmlFor="node-attempts">Max attempts</label>
          <input
            id="node-attempts"
            type="number"
            min={1}
            value={String(spec.retry?.max_attempts ?? "")}
            onChange={(e) => update({ retry: e.target.value ? { ...(spec.retry ?? {}), max_attempts: Number(e.target.value) } : undefined })}
          />
        </div>
      </div>
      <h3>Config</h3>
      <SchemaFields
        key={node.id}
        idPrefix={`config-${node.id}`}
        schema={schema}
        value={spec.config ?? {}}
        onChange={(config) => update({ config })}
        hints={templateHints(props.inputs, upstreamOf(node.id, edges))}
      />
    </div>
  );
}

export function EdgeEditor(props: { edge: FlowEdge; sourceType?: string; errors: string[]; setEdges: SetState<FlowEdge[]>; onDelete: () => void }) {
  const { edge, sourceType, errors, setEdges } = props;
  const data = edge.data ?? {};
  const update = (patch: { when?: string; branch?: string }) =>
    setEdges((current) =>
      current.map((e) => {
        if (e.id !== edge.id) return e;
        const next = { ...e.data, ...patch };
        if (!next.when) delete next.when;
        if (!next.branch) delete next.branch;
        return { ...e, data: next, label: edgeLabel(next) };
      }),
    );
  return (
    <div data-testid="edge-editor">
      <div className="row">
        <h2 style={{ flex: 1 }}>Edge {edge.source} → {edge.target}</h2>
        <button className="danger" onClick={props.onDelete} title="Delete">Delete</button>
      </div>
      <Messages errors={errors} />
      <div className="field">
        <label htmlFor="edge-branch">Branch label</label>
        {sourceType === "hitl" ? (
          <select id="edge-branch" value={data.branch ?? ""} onChange={(e) => update({ branch: e.target.value })}>
            <option value="">(always)</option>
            <option value="approved">approved</option>
            <option value="rejected">rejected</option>
          </select>
        ) : (
          <input id="edge-branch" value={data.branch ?? ""} onChange={(e) => update({ branch: e.target.value })} />
        )}
        <div className="hint">A hitl node decides approved or rejected.</div>
      </div>
      <div className="field">
        <label htmlFor="edge-when">Condition (when)</label>
        <input id="edge-when" value={data.when ?? ""} placeholder="output.status == 200, or failed" onChange={(e) => update({ when: e.target.value })} />
        <div className="hint">`output` is the source node's output; `failed` takes the edge only when the source failed.</div>
      </div>
    </div>
  );
}

/** More than one node selected: what can be done to them together. */
export function SelectionEditor(props: { nodes: FlowNode[]; onCopy: () => void; onCut: () => void; onDuplicate: () => void; onDelete: () => void }) {
  return (
    <div data-testid="selection-editor">
      <h2>{props.nodes.length} nodes selected</h2>
      <p className="muted">{props.nodes.map((n) => n.id).join(", ")}</p>
      <div className="row">
        <button onClick={props.onCopy} title="Copy (Ctrl+C)">Copy</button>
        <button onClick={props.onCut} title="Cut (Ctrl+X)">Cut</button>
        <button onClick={props.onDuplicate} title="Duplicate (Ctrl+D)">Duplicate</button>
        <button className="danger" onClick={props.onDelete} title="Delete">Delete</button>
      </div>
      <p className="muted">Paste them here or into another workflow with Ctrl+V. Press ? for every shortcut.</p>
    </div>
  );
}

export function WorkflowEditor(props: {
  meta: DefinitionMeta;
  setMeta: (meta: DefinitionMeta) => void;
  validation: Validation | null;
  workflowErrors: string[];
  workflowWarnings: string[];
}) {
  const { meta, setMeta, validation } = props;
  return (
    <div data-testid="workflow-editor">
      <h2>Workflow</h2>
      <p className="muted">Select a node or an edge to edit it.</p>
      <Messages errors={props.workflowErrors} warnings={props.workflowWarnings} />
      {validation && !validation.valid && (
        <p className="muted">{validation.errors.length} error(s) in all; each is shown on its node or edge.</p>
      )}
      <div className="field">
        <label htmlFor="wf-description">Description</label>
        <textarea id="wf-description" rows={2} value={meta.description ?? ""} onChange={(e) => setMeta({ ...meta, description: e.target.value || undefined })} />
      </div>
      <JsonField label="Inputs (JSON Schema)" id="wf-inputs" value={meta.inputs} onChange={(inputs) => setMeta({ ...meta, inputs: inputs as DefinitionMeta["inputs"] })} />
      <JsonField label="Outputs (name → template)" id="wf-outputs" value={meta.outputs} onChange={(outputs) => setMeta({ ...meta, outputs: outputs as DefinitionMeta["outputs"] })} />
    </div>
  );
}

function JsonField({ label, id, value, onChange }: { label: string; id: string; value: unknown; onChange: (v: unknown) => void }) {
  const [raw, setRaw] = useState(value === undefined ? "" : JSON.stringify(value, null, 2));
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    // Show outside changes (a workflow opened, an import) without clobbering what is being typed.
    let typed: unknown = undefined;
    try {
      typed = raw.trim() ? JSON.parse(raw) : undefined;
    } catch {
      return;
    }
    if (JSON.stringify(typed) !== JSON.stringify(value)) setRaw(value === undefined ? "" : JSON.stringify(value, null, 2));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);
  return (
    <div className={`field${error ? " invalid" : ""}`}>
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        rows={6}
        value={raw}
        onChange={(e) => {
          setRaw(e.target.value);
          if (!e.target.value.trim()) {
            setError(null);
            return onChange(undefined);
          }
          try {
            onChange(JSON.parse(e.target.value));
            setError(null);
          } catch (exc) {
            setError(`expected JSON: ${(exc as Error).message}`);
          }
        }}
      />
      {error && <div className="errors">{error}</div>}
    </div>
  );
}
