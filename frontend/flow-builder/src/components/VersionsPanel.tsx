// Version history: open any version, or compare two on the canvas with nodes and edges coloured by change.
import { useEffect, useState } from "react";
import { describeError } from "../api/client";
import type { Definition, Page, VersionInfo } from "../api/types";
import { useSession } from "../session";
import { diffDefinitions, edgeKey, type NodeDiff } from "../state/diff";
import { definitionToCanvas, edgeLabel, type FlowEdge, type FlowNode } from "../state/graph";

export type Comparison = { from: number; to: number; nodes: FlowNode[]; edges: FlowEdge[]; changes: NodeDiff[] };

/** The canvas of ``after`` plus what ``before`` had and ``after`` lost, each coloured by its change. */
export function comparisonCanvas(before: Definition, after: Definition): { nodes: FlowNode[]; edges: FlowEdge[]; changes: NodeDiff[] } {
  const diff = diffDefinitions(before, after);
  const union: Definition = {
    ...after,
    nodes: [...after.nodes, ...diff.nodes.filter((n) => n.change === "removed").map((n) => n.spec)],
    edges: [...after.edges, ...diff.edges.filter((e) => e.change === "removed").map((e) => e.edge)],
  };
  const canvas = definitionToCanvas(union);
  const byId = new Map(diff.nodes.map((n) => [n.id, n]));
  const byEdge = new Map(diff.edges.map((e) => [e.key, e.change]));
  return {
    nodes: canvas.nodes.map((n) => ({ ...n, draggable: false, data: { ...n.data, overlay: { diff: byId.get(n.id)?.change, meta: byId.get(n.id)?.fields.join(", ") } } })),
    edges: canvas.edges.map((e, i) => {
      const change = byEdge.get(edgeKey(union.edges[i]));
      return { ...e, className: change && change !== "same" ? `diff-${change}` : undefined, label: edgeLabel(union.edges[i]) };
    }),
    changes: diff.nodes.filter((n) => n.change !== "same"),
  };
}

export function VersionsPanel(props: {
  workflow: string;
  comparison: Comparison | null;
  onCompare: (comparison: Comparison | null) => void;
  onOpen: (definition: Definition, version: number) => void;
}) {
  const { api } = useSession();
  const [versions, setVersions] = useState<VersionInfo[]>([]);
  const [from, setFrom] = useState<number | null>(null);
  const [to, setTo] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const base = `/api/v1/workflows/${encodeURIComponent(props.workflow)}/versions`;
  useEffect(() => {
    api
      .get<Page<VersionInfo>>(base)
      .then((page) => {
        setVersions(page.items);
        if (page.items.length > 1) {
          setTo(page.items[0].version);
          setFrom(page.items[1].version);
        }
      })
      .catch((e) => setError(describeError(e)));
  }, [api, base]);
  const definition = (version: number) => api.get<{ definition: Definition }>(`${base}/${version}`).then((v) => v.definition);
  const compare = async () => {
    if (from === null || to === null) return;
    try {
      const [before, after] = await Promise.all([definition(from), definition(to)]);
      props.onCompare({ from, to, ...comparisonCanvas(before, after) });
    } catch (e) {
      setError(describeError(e));
    }
  };
  const { comparison } = props;
  return (
    <div data-testid="versions-panel">
      <h2>Versions of {props.workflow}</h2>
      {error && <div className="alert">{error}</div>}
      <table className="list">
        <thead>
          <tr><th>v</th><th>from</th><th>to</th><th>saved</th><th /></tr>
        </thead>
        <tbody>
          {versions.map((v) => (
            <tr key={v.version}>
              <td>{v.version}</td>
              <td><input type="radio" name="from" aria-label={`compare from ${v.version}`} checked={from === v.version} onChange={() => setFrom(v.version)} /></td>
              <td><input type="radio" name="to" aria-label={`compare to ${v.version}`} checked={to === v.version} onChange={() => setTo(v.version)} /></td>
              <td className="muted">{new Date(v.created_at).toLocaleString()}</td>
              <td><button onClick={() => void definition(v.version).then((d) => props.onOpen(d, v.version))}>Open</button></td>
            </tr>
          ))}
        </tbody>
      </table>
      <div className="row" style={{ marginTop: 8 }}>
        <button className="primary" onClick={() => void compare()} disabled={from === null || to === null || from === to}>Compare</button>
        {comparison && <button onClick={() => props.onCompare(null)}>Back to editing</button>}
      </div>
      {comparison && (
        <div data-testid="comparison">
          <h3>v{comparison.from} → v{comparison.to}</h3>
          <p className="muted"><span className="badge ok">added</span> <span className="badge bad">removed</span> <span className="badge warn">changed</span></p>
          {comparison.changes.length === 0 && <p>No node changed.</p>}
          <ul>
            {comparison.changes.map((c) => (
              <li key={c.id}>
                <b>{c.id}</b> {c.change}
                {c.fields.length > 0 && <>: <code>{c.fields.join(", ")}</code></>}
              </li>
            ))}
          </ul>
        </div>
      )}
    </div>
  );
}
