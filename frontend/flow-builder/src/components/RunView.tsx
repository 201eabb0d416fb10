// One run, live: nodes coloured by state, patches animated as they land, a timeline stepping base → patch N,
// approvals on their nodes, a detail panel (state, attempts, child runs, output, error, log) per node, the run's
// timeline, and the actions on the run (cancel, resume, run again).
import { Background, Controls, ReactFlow, ReactFlowProvider, type NodeChange } from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { describeError } from "../api/client";
import type { ChildRun, Definition, Page, PatchRecord, Run, RunEvent } from "../api/types";
import { useChildRuns } from "../net/childRuns";
import { useLiveRun } from "../net/runStore";
import { useTenant, useTenantEvents } from "../net/tenant";
import { useSession } from "../session";
import { definitionToCanvas } from "../state/graph";
import { applyPatch } from "../state/jsonPatch";
import type { NodeView, PendingApproval, RunView as View } from "../state/runEvents";
import { nodeAttempts, type AttemptsView } from "../state/attempts";
import { ApprovalCard } from "./ApprovalsPage";
import { ChildRuns, NodeAttempts } from "./NodeAttempts";
import { ResumeDialog, RunAgainDialog, type ActionDialog } from "./RunActions";
import { RunTimeline } from "./RunTimeline";
import { nodeTypes, type NodeOverlay } from "./FlowNode";
import { LogPanel } from "./LogPanel";
import { RunTokens } from "./AgentLog";

type Loaded = { run: Run; definition: Definition; base: Definition | null; patches: PatchRecord[] };

function nodeMeta(node: NodeView | undefined): string | undefined {
  if (!node) return undefined;
  const parts = [`attempt ${node.attempt}`];
  const ms = node.execMs ?? (node.startedTs && node.endedTs ? node.endedTs - node.startedTs : undefined);
  if (ms !== undefined) parts.push(ms < 1000 ? `${ms.toFixed(ms < 10 ? 1 : 0)} ms` : `${(ms / 1000).toFixed(2)} s`);
  if (node.retries) parts.push(`${node.retries} retr${node.retries > 1 ? "ies" : "y"}`);
  return parts.join(" · ");
}

export function RunView({ runId }: { runId: string }) {
  return (
    <ReactFlowProvider>
      <RunViewInner runId={runId} />
    </ReactFlowProvider>
  );
}

function RunViewInner({ runId }: { runId: string }) {
  const { api } = useSession();
  const live = useLiveRun(runId, api.key);
  const tenant = useTenant(api);
  const view = live.view;
  const { restart } = live;
  // A resume (from this page or anywhere else) makes an ended run live again: its tenant event says so.
  const onTenantEvents = useCallback(
    (events: RunEvent[]) => {
      if (events.some((e) => e.run_id === runId && e.type === "run_resumed")) restart();
    },
    [runId, restart],
  );
  useTenantEvents(api, onTenantEvents);
  const [loaded, setLoaded] = useState<Loaded | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [step, setStep] = useState<number | null>(null);
  const [tab, setTab] = useState<"detail" | "logs">("detail");
  const [dialog, setDialog] = useState<ActionDialog | null>(null);
  const [showTimeline, setShowTimeline] = useState(false);
  const path = `/api/v1/runs/${encodeURIComponent(runId)}`;

  // Read again when a patch lands (new nodes) and when the run ends (outputs).
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const [run, current, patches] = await Promise.all([
        api.get<Run>(path),
        api.get<{ definition: Definition }>(`${path}/definition`),
        api.get<Page<PatchRecord>>(`${path}/patches`),
      ]);
      const base = patches.items.length
        ? await api
            .get<{ definition: Definition }>(`/api/v1/workflows/${encodeURIComponent(run.workflow_id)}/versions/${run.version}`)
            .then((v) => v.definition)
            .catch(() => null)
        : current.definition;
      if (!cancelled) setLoaded({ run, definition: current.definition, base, patches: patches.items });
    })().catch((e) => !cancelled && setError(describeError(e)));
    return () => {
      cancelled = true;
    };
    // A resume may replace the inputs.
  }, [api, path, view.patches.length, view.ended, live.attempts.epoch]);
  const children = useChildRuns(api, runId, live.attempts.childEvents, loaded?.run.children ?? []);

  const decided = tenant.decided;
  const approvals = useMemo(() => Object.values(view.approvals).filter((a) => !decided.has(a.id)), [view.approvals, decided]);
  // React Flow hides a node whose size it does not know. The canvas is rebuilt from every live event, so each
  // rebuilt node carries the size React Flow measured last; without it every event hid every node until
  // re-measured, and a lost re-measure left a node hidden for good.
  const sizes = useRef(new Map<string, { width: number; height: number }>());
  const onNodesChange = useCallback((changes: NodeChange[]) => {
    for (const change of changes) {
      if (change.type === "dimensions" && change.dimensions) sizes.current.set(change.id, change.dimensions);
    }
  }, []);
  const patches = loaded?.patches ?? [];
  const shownDefinition = useMemo(() => {
    if (!loaded) return null;
    if (step === null || !loaded.base) return loaded.definition;
    return applyPatch(loaded.base, patches.slice(0, step).flatMap((p) => p.ops));
  }, [loaded, step, patches]);
  const stepAdded = useMemo(() => {
    if (step === null || step === 0 || !loaded?.base) return new Set<string>();
    const before = new Set(applyPatch(loaded.base, patches.slice(0, step - 1).flatMap((p) => p.ops)).nodes.map((n) => n.id));
    return new Set((shownDefinition?.nodes ?? []).filter((n) => !before.has(n.id)).map((n) => n.id));
  }, [step, loaded, patches, shownDefinition]);

  const canvas = useMemo(() => (shownDefinition ? definitionToCanvas(shownDefinition) : null), [shownDefinition]);
  // A node whose inputs did not change keeps its object, so React Flow and the memoised node drawing skip it: a
  // batch of events on a 1,000-node run redraws the nodes it touched, not all of them.
  type Drawn = { inputs: unknown[]; node: ReturnType<typeof definitionToCanvas>["nodes"][number] };
  const drawn = useRef(new Map<string, Drawn>());
  const nodes = useMemo(() => {
    if (!canvas) return [];
    const waiting = new Set(approvals.map((a) => a.nodeId));
    return canvas.nodes.map((n) => {
      const state = view.nodes[n.id];
      const patched = step === null ? n.id in view.addedNodes : stepAdded.has(n.id);
      const measured = sizes.current.get(n.id);
      const inputs = [n, state, patched, waiting.has(n.id), n.id === selected, measured];
      const cached = drawn.current.get(n.id);
      if (cached && cached.inputs.every((value, i) => value === inputs[i])) return cached.node;
      const approval = waiting.has(n.id);
      const overlay: NodeOverlay = { status: state?.status ?? "pending", meta: nodeMeta(state), patched, approval };
      const node = { ...n, measured, selected: n.id === selected, draggable: false, data: { ...n.data, overlay } };
      drawn.current.set(n.id, { inputs, node });
      return node;
    });
  }, [canvas, view.nodes, view.addedNodes, approvals, selected, step, stepAdded]);
  const edges = useMemo(() => {
    if (!canvas) return [];
    const patched = step === null ? new Set(Object.keys(view.addedNodes)) : stepAdded;
    return canvas.edges.map((e) => {
      const isNew = patched.has(e.target) || patched.has(e.source);
      const running = view.nodes[e.target]?.status === "running" || view.nodes[e.target]?.status === "queued";
      return { ...e, animated: isNew || running, className: isNew ? "patched" : undefined };
    });
  }, [canvas, view.addedNodes, view.nodes, step, stepAdded]);

  const selectedSpec = shownDefinition?.nodes.find((n) => n.id === selected);
  return (
    <>
      <section className="canvas">
        <div className="toolbar">
          <b>{loaded?.run.workflow_name ?? view.workflowName ?? "run"}</b>
          <span className="muted">v{loaded?.run.version ?? view.version ?? "?"}</span>
          <code>{runId}</code>
          <span className={`status-${view.status}`}>
            <span className="pill" data-testid="run-status">{view.status}</span>
          </span>
          <span className="muted" data-testid="socket-status">
            stream: {live.status}
            {live.detail ? ` (${live.detail})` : ""}
          </span>
          <span style={{ flex: 1 }} />
          {!view.ended && (
            <button className="danger" onClick={() => void api.post(`${path}/cancel`).catch((e) => setError(describeError(e)))}>
              Cancel run
            </button>
          )}
          {view.ended && loaded && (
            <button onClick={() => setDialog({ mode: "resume", fromNode: null })} data-testid="resume-run">
              Resume…
            </button>
          )}
          {view.ended && loaded?.run.workflow_id && (
            <button onClick={() => setDialog({ mode: "again" })} data-testid="run-again">
              Run again…
            </button>
          )}
        </div>
        {error && <div className="alert" style={{ margin: "6px 10px" }}>{error}</div>}
        <div className="flow" data-testid="run-canvas">
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesChange}
            nodesConnectable={false}
            deleteKeyCode={null}
            onNodeClick={(_, node) => setSelected(node.id)}
            onPaneClick={() => setSelected(null)}
            fitView
            fitViewOptions={{ padding: 0.2, maxZoom: 1 }}
          >
            <Background />
            <Controls />
          </ReactFlow>
        </div>
        <div className="timeline" data-testid="patch-timeline">
          <span className="muted">Patches:</span>
          <button className={step === 0 ? "on" : ""} onClick={() => setStep(0)} disabled={!loaded?.base}>base</button>
          {patches.map((p, i) => (
            <button key={p.to_version} className={step === i + 1 ? "on" : ""} onClick={() => setStep(i + 1)} title={`${p.author}: ${p.ops.length} ops`}>
              patch {i + 1}
            </button>
          ))}
          <button className={step === null ? "on" : ""} onClick={() => setStep(null)}>live</button>
          <span style={{ flex: 1 }} />
          <button className={showTimeline ? "on" : ""} aria-pressed={showTimeline} onClick={() => setShowTimeline(!showTimeline)} data-testid="timeline-toggle">
            Timeline
          </button>
          {step !== null && step > 0 && patches[step - 1] && (
            <span data-testid="patch-detail">
              by <b>{patches[step - 1].author}</b>
              {patches[step - 1].reason ? ` (${patches[step - 1].reason})` : ""}: {patches[step - 1].ops.map((o) => `${o.op} ${o.path}`).join(", ")}
            </span>
          )}
        </div>
        {showTimeline && (
          <section className="timeline-panel" aria-label="run timeline">
            <RunTimeline attempts={live.attempts} live={!view.ended} onSelect={setSelected} />
          </section>
        )}
      </section>
      {dialog && loaded && dialog.mode === "resume" && (
        <ResumeDialog run={loaded.run} definition={loaded.definition} fromNode={dialog.fromNode} onClose={() => setDialog(null)} onResumed={restart} />
      )}
      {dialog && loaded && dialog.mode === "again" && (
        <RunAgainDialog run={loaded.run} definition={loaded.definition} onClose={() => setDialog(null)} />
      )}
      <aside className="panel">
        {selected ? (
          <>
            <div className="tabs">
              <button className={tab === "detail" ? "on" : ""} onClick={() => setTab("detail")}>Detail</button>
              <button className={tab === "logs" ? "on" : ""} onClick={() => setTab("logs")} data-testid="logs-tab">Log</button>
              <span style={{ flex: 1 }} />
              <button onClick={() => setSelected(null)}>×</button>
            </div>
            <h2>
              {selectedSpec?.type ?? "node"} <code>{selected}</code>
            </h2>
            {tab === "detail" ? (
              <NodeDetail
                node={view.nodes[selected]}
                spec={selectedSpec}
                approvals={approvals.filter((a) => a.nodeId === selected)}
                runId={runId}
                runNode={loaded?.run.nodes?.[selected]}
                attempts={live.attempts}
                run={loaded?.run ?? null}
                children={children}
                ended={view.ended}
                onResumeFrom={() => setDialog({ mode: "resume", fromNode: selected })}
              />
            ) : (
              <LogPanel runId={runId} nodeId={selected} log={view.logs[selected]} nodeType={selectedSpec?.type} />
            )}
          </>
        ) : (
          <RunSummary view={view} run={loaded?.run ?? null} approvals={approvals} runId={runId} children={children} />
        )}
      </aside>
    </>
  );
}

function Json({ value }: { value: unknown }) {
  return <pre>{JSON.stringify(value, null, 2)}</pre>;
}

function NodeDetail(props: {
  node: NodeView | undefined;
  spec: Definition["nodes"][number] | undefined;
  approvals: PendingApproval[];
  runId: string;
  runNode: { output?: unknown; output_ref?: string } | undefined;
  attempts: AttemptsView;
  run: Run | null;
  children: ChildRun[];
  ended: boolean;
  onResumeFrom: () => void;
}) {
  const { api } = useSession();
  const { node, spec } = props;
  const [blob, setBlob] = useState<unknown>(undefined);
  const ref = node?.outputRef ?? props.runNode?.output_ref;
  useEffect(() => {
    if (!ref) return;
    api.get<unknown>(`/api/v1/blobs/${ref.replace(/^cas:\/\/sha256:/, "")}`).then(setBlob).catch(() => {});
  }, [api, ref]);
  const output = node?.output ?? props.runNode?.output ?? blob;
  const children = props.children.filter((c) => c.parent_node_id === spec?.id);
  const ms = (value: number | undefined) => (value === undefined ? "–" : `${value.toFixed(1)} ms`);
  return (
    <div data-testid="node-detail">
      {props.approvals.map((a) => (
        <ApprovalCard key={a.id} approval={{ id: a.id, run_id: props.runId, node_id: a.nodeId, title: a.title, description: a.description }} />
      ))}
      <dl className="kv">
        <dt>status</dt>
        <dd className={`status-${node?.status ?? "pending"}`}><span className="pill">{node?.status ?? "pending"}</span></dd>
        <dt>attempts</dt>
        <dd>{node?.attempt ?? 0}{node?.retries ? ` (${node.retries} retried)` : ""}</dd>
        <dt>queued for</dt>
        <dd>{ms(node?.queueMs)}</dd>
        <dt>ran for</dt>
        <dd>{ms(node?.execMs ?? (node?.startedTs && node.endedTs ? node.endedTs - node.startedTs : undefined))}</dd>
        {node?.branch && (<><dt>branch</dt><dd>{node.branch}</dd></>)}
        {node?.reason && (<><dt>reason</dt><dd>{node.reason}</dd></>)}
      </dl>
      {props.ended && props.run && (
        <button onClick={props.onResumeFrom} data-testid="resume-from-node">Resume from this node…</button>
      )}
      <h3>Attempts</h3>
      <NodeAttempts attempts={spec ? nodeAttempts(props.attempts, spec.id) : []} />
      {children.length > 0 && (
        <>
          <h3>Child runs</h3>
          <ChildRuns children={children} showNode={false} />
        </>
      )}
      <h3>Inputs (config)</h3>
      <Json value={spec?.config ?? {}} />
      <h3>Output</h3>
      {output === undefined ? <p className="muted">none yet</p> : <Json value={output} />}
      {node?.error !== undefined && node.error !== null && (
        <>
          <h3>Error</h3>
          <Json value={node.error} />
        </>
      )}
    </div>
  );
}

function RunSummary(props: { view: View; run: Run | null; approvals: PendingApproval[]; runId: string; children: ChildRun[] }) {
  const { view, run, approvals, runId, children } = props;
  return (
    <div data-testid="run-summary">
      <h2>Run</h2>
      <p className="muted">Click a node for its detail, attempts and log.</p>
      {run?.parent_run_id && (
        <p>
          Started by run <a href={`#/runs/${encodeURIComponent(run.parent_run_id)}`} data-testid="parent-run"><code>{run.parent_run_id}</code></a>
        </p>
      )}
      {approvals.length > 0 && <h3>Waiting for approval</h3>}
      {approvals.map((a) => (
        <ApprovalCard key={a.id} approval={{ id: a.id, run_id: runId, node_id: a.nodeId, title: a.title, description: a.description }} />
      ))}
      <h3>Inputs</h3>
      <Json value={run?.inputs ?? {}} />
      {children.length > 0 && (
        <>
          <h3>Child runs ({children.length})</h3>
          <ChildRuns children={children} showNode />
        </>
      )}
      {view.ended && (
        <>
          <h3>Outputs</h3>
          <Json value={run?.outputs ?? null} />
        </>
      )}
      {view.error !== undefined && (
        <>
          <h3>Error</h3>
          <Json value={view.error} />
        </>
      )}
      <h3>Patches ({view.patches.length})</h3>
      <ul>
        {view.patches.map((p) => (
          <li key={p.eventId}>
            v{p.fromVersion} → v{p.toVersion} by {p.author}: added {p.addedNodes.join(", ") || "no nodes"}
          </li>
        ))}
      </ul>
      <RunTokens logs={view.logs} />
      <p className="muted">{view.applied} events applied · last id {view.lastId}</p>
    </div>
  );
}
