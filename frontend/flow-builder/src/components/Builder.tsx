// The builder: palette, canvas and side panel; live validation, save as a new version, compare versions, run;
// undo/redo, copy/paste and keyboard shortcuts (useCanvasEditing).
import {
  Background,
  Controls,
  MiniMap,
  ReactFlow,
  ReactFlowProvider,
  addEdge,
  useEdgesState,
  useNodesState,
  useReactFlow,
  type Connection,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { ApiError, describeError } from "../api/client";
import type { Definition, NodeType, Page, Validation, Workflow } from "../api/types";
import { useSession } from "../session";
import {
  canvasToDefinition,
  definitionToCanvas,
  edgeLabel,
  freshNodeId,
  layout,
  type DefinitionMeta,
  type FlowEdge,
  type FlowNode,
} from "../state/graph";
import { pinErrors } from "../state/validation";
import { nodeTypes } from "./FlowNode";
import { EdgeEditor, NodeEditor, SelectionEditor, WorkflowEditor } from "./Editors";
import { NodePalette } from "./NodePalette";
import { RunDialog } from "./RunDialog";
import { ShortcutHelp } from "./ShortcutHelp";
import { useCanvasEditing } from "./useCanvasEditing";
import { VersionsPanel, type Comparison } from "./VersionsPanel";
import { WorkflowPicker } from "./WorkflowPicker";

const DEFAULT_CONFIG: Record<string, Record<string, unknown>> = {
  hitl: { title: "Approve?" },
  transform: { output: {} },
  delay: { seconds: 1 },
  http: { method: "GET", url: "" },
  agent: { prompt: "" },
};

const EMPTY_META: DefinitionMeta = { inputs: { type: "object", properties: {} } };

export function Builder(props: { workflowRef: string | null }) {
  return (
    <ReactFlowProvider>
      <BuilderInner {...props} />
    </ReactFlowProvider>
  );
}

function BuilderInner({ workflowRef }: { workflowRef: string | null }) {
  const { api } = useSession();
  const flow = useReactFlow();
  const [types, setTypes] = useState<NodeType[]>([]);
  const [savedCount, setSavedCount] = useState(0);
  const [nodes, setNodes, onNodesChange] = useNodesState<FlowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<FlowEdge>([]);
  const [meta, setMeta] = useState<DefinitionMeta>(EMPTY_META);
  const [name, setName] = useState("");
  const [saved, setSaved] = useState<{ name: string; version: number; json: string } | null>(null);
  const [validation, setValidation] = useState<Validation | null>(null);
  const [message, setMessage] = useState<{ text: string; error?: boolean } | null>(null);
  const [panel, setPanel] = useState<"edit" | "versions">("edit");
  const [comparison, setComparison] = useState<Comparison | null>(null);
  const [running, setRunning] = useState(false);
  const [help, setHelp] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const paletteSearch = useRef<HTMLInputElement>(null);
  const flowBox = useRef<HTMLDivElement>(null);
  const pointer = useRef<{ x: number; y: number } | null>(null);

  const load = useCallback(
    (definition: Definition, workflowName: string) => {
      const canvas = definitionToCanvas(definition);
      setNodes(canvas.nodes);
      setEdges(canvas.edges);
      setMeta(canvas.meta);
      setName(workflowName);
      setTimeout(() => void flow.fitView({ padding: 0.2, maxZoom: 1 }), 50);
      return canvas;
    },
    [flow, setEdges, setNodes],
  );

  useEffect(() => {
    api.get<Page<NodeType>>("/api/v1/node-types").then((page) => setTypes(page.items)).catch((e) => setMessage({ text: describeError(e), error: true }));
  }, [api]);

  // Pasted nodes go where the pointer is over the canvas, else to the middle of the view.
  const pastePoint = useCallback(() => {
    const box = flowBox.current?.getBoundingClientRect();
    const at = pointer.current ?? (box ? { x: box.left + box.width / 2, y: box.top + box.height / 2 } : { x: 0, y: 0 });
    return flow.screenToFlowPosition(at);
  }, [flow]);
  const notify = useCallback((text: string, error?: boolean) => setMessage({ text, error }), []);
  const editing = useCanvasEditing({
    nodes,
    edges,
    setNodes,
    setEdges,
    enabled: !comparison && !running,
    pastePoint,
    notify,
    onAction: (action) => {
      if (action === "save") void save();
      else if (action === "searchPalette") paletteSearch.current?.focus();
      else if (action === "help") setHelp((shown) => !shown);
      else if (help) setHelp(false);
      else {
        setNodes((current) => current.map((n) => (n.selected ? { ...n, selected: false } : n)));
        setEdges((current) => current.map((e) => (e.selected ? { ...e, selected: false } : e)));
      }
    },
  });
  const resetHistory = editing.reset;

  useEffect(() => {
    if (!workflowRef) return;
    api
      .get<Workflow>(`/api/v1/workflows/${encodeURIComponent(workflowRef)}`)
      .then((wf) => {
        const opened = load(wf.definition, wf.name);
        resetHistory(opened.nodes, opened.edges);
        const canvas = definitionToCanvas(wf.definition);
        // Built as currentJson() builds it (the name included), so an unchanged workflow is not "unsaved".
        const json = JSON.stringify(canvasToDefinition({ ...canvas.meta, name: wf.name }, canvas.nodes, canvas.edges));
        setSaved({ name: wf.name, version: wf.version, json });
      })
      .catch((e) => setMessage({ text: describeError(e), error: true }));
  }, [api, workflowRef, load, resetHistory]);

  // The definition leaves positions out, so moving nodes keeps the same one (and validates nothing again): the nodes
  // it is built from change only when a node's id or spec does.
  const specNodes = useRef(nodes);
  const previous = specNodes.current;
  if (previous.length !== nodes.length || nodes.some((n, i) => n.id !== previous[i].id || n.data !== previous[i].data)) specNodes.current = nodes;
  const definition = useMemo(
    () => canvasToDefinition({ ...meta, name: name || undefined }, specNodes.current, edges, { positions: false }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [meta, name, specNodes.current, edges],
  );
  const definitionKey = useMemo(() => JSON.stringify(definition), [definition]);

  useEffect(() => {
    if (!definition.nodes.length) {
      setValidation(null);
      return;
    }
    const timer = setTimeout(() => {
      api
        .post<Validation>("/api/v1/validate", { definition })
        .then(setValidation)
        .catch((e) => {
          // A 422 means the body itself was refused; its details are the errors to pin.
          if (e instanceof ApiError && e.status === 422 && Array.isArray(e.details)) {
            setValidation({ valid: false, errors: e.details.map(String), warnings: [] });
          } else setMessage({ text: describeError(e), error: true });
        });
    }, 300);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [api, definitionKey]);

  const pinned = useMemo(() => pinErrors(definition, validation?.errors ?? []), [definition, validation]);
  const pinnedWarnings = useMemo(() => pinErrors(definition, validation?.warnings ?? []), [definition, validation]);

  // Only nodes and edges with errors are copied to carry them; the rest stay the very objects of the canvas state,
  // so an edit re-renders what it changed, not all 500 nodes of a large workflow (npm run bench:ui).
  const shownNodes = useMemo(
    () => (comparison ? comparison.nodes : nodes.map((n) => (pinned.nodes[n.id] ? { ...n, data: { ...n.data, overlay: { errors: pinned.nodes[n.id] } } } : n))),
    [comparison, nodes, pinned],
  );
  // Keyed by which edges have errors, not by every new validation: a moved node then leaves the edges alone.
  const invalidEdges = Object.keys(pinned.edges).join(",");
  const shownEdges = useMemo(() => {
    if (comparison) return comparison.edges;
    const invalid = new Set(invalidEdges.split(",").filter(Boolean).map(Number));
    return edges.map((e, i) => (invalid.has(i) ? { ...e, className: "invalid" } : e));
  }, [comparison, edges, invalidEdges]);

  const onConnect = useCallback(
    (connection: Connection) => {
      const source = nodes.find((n) => n.id === connection.source);
      const data: { branch?: string } = {};
      if (source?.data.spec.type === "hitl") {
        const used = new Set(edges.filter((e) => e.source === connection.source).map((e) => e.data?.branch));
        data.branch = used.has("approved") ? "rejected" : "approved";
      }
      setEdges((current) =>
        addEdge({ ...connection, id: `e${Date.now()}:${connection.source}->${connection.target}`, data, label: edgeLabel(data) }, current),
      );
    },
    [nodes, edges, setEdges],
  );

  const addNode = useCallback(
    (type: string, position: { x: number; y: number }) =>
      setNodes((current) => {
        const id = freshNodeId(type, current.map((n) => n.id));
        const spec = { id, type, config: structuredClone(DEFAULT_CONFIG[type] ?? {}) };
        const node: FlowNode = { id, type: "aob", position: { x: position.x - 95, y: position.y - 32 }, data: { spec } };
        return [...current.map((n) => (n.selected ? { ...n, selected: false } : n)), { ...node, selected: true }];
      }),
    [setNodes],
  );

  const onDrop = useCallback(
    (event: React.DragEvent) => {
      event.preventDefault();
      const type = event.dataTransfer.getData("application/aob-node-type");
      if (type) addNode(type, flow.screenToFlowPosition({ x: event.clientX, y: event.clientY }));
    },
    [flow, addNode],
  );

  const currentJson = () => JSON.stringify(canvasToDefinition({ ...meta, name: name || undefined }, nodes, edges));

  const save = async (): Promise<{ name: string; version: number } | null> => {
    const workflowName = name.trim();
    if (!workflowName) {
      setMessage({ text: "Give the workflow a name before saving.", error: true });
      return null;
    }
    const body = JSON.parse(currentJson()) as Definition;
    try {
      const result =
        saved && saved.name === workflowName
          ? await api.put<Workflow & { created: boolean }>(`/api/v1/workflows/${encodeURIComponent(workflowName)}`, { definition: body })
          : await api.post<Workflow>("/api/v1/workflows", { name: workflowName, definition: body });
      const created = "created" in result ? (result as { created: boolean }).created : true;
      setSaved({ name: result.name, version: result.version, json: JSON.stringify(body) });
      setMessage({ text: created ? `Saved ${result.name} as version ${result.version}.` : `No changes: ${result.name} stays at version ${result.version}.` });
      history.replaceState(null, "", `#/builder/${encodeURIComponent(result.name)}`);
      setSavedCount((count) => count + 1);
      return { name: result.name, version: result.version };
    } catch (e) {
      setMessage({ text: describeError(e), error: true });
      return null;
    }
  };

  const startRun = async () => {
    if (!saved || saved.json !== currentJson() || saved.name !== name.trim()) {
      if (!(await save())) return;
    }
    setRunning(true);
  };

  const importFile = async (file: File) => {
    try {
      const parsed = JSON.parse(await file.text()) as Definition & { definition?: Definition; name?: string };
      const definitionIn = parsed.definition ?? parsed;
      if (!Array.isArray(definitionIn.nodes)) throw new Error("expected a definition with a 'nodes' list");
      load({ ...definitionIn, edges: definitionIn.edges ?? [] }, parsed.name ?? definitionIn.name ?? file.name.replace(/\.json$/, ""));
      setSaved(null);
      setMessage({ text: `Imported ${file.name}.` });
    } catch (e) {
      setMessage({ text: `Import of ${file.name} failed: ${describeError(e)}`, error: true });
    }
  };

  const exportFile = () => {
    const blob = new Blob([JSON.stringify(JSON.parse(currentJson()), null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${name || "workflow"}.json`;
    link.click();
    URL.revokeObjectURL(link.href);
  };

  const selectedNodes = nodes.filter((n) => n.selected);
  const selectedNode = selectedNodes.length === 1 ? selectedNodes[0] : undefined;
  const selectedEdgeIndex = edges.findIndex((e) => e.selected);
  const dirty = !saved || saved.json !== currentJson() || saved.name !== name.trim();
  const errorCount = validation?.errors.length ?? 0;

  return (
    <>
      <aside className="sidebar" aria-label="workflows and node types">
        <h2>Workflows</h2>
        <WorkflowPicker current={saved?.name ?? null} refreshKey={savedCount} />
        <NodePalette ref={paletteSearch} types={types} onAdd={(type) => addNode(type, pastePoint())} />
      </aside>
      <section className="canvas">
        <div className="toolbar">
          <input className="name" aria-label="workflow name" placeholder="workflow name" value={name} onChange={(e) => setName(e.target.value)} />
          {validation === null ? (
            <span className="badge">no nodes</span>
          ) : errorCount ? (
            <span className="badge bad" data-testid="validity">{errorCount} error{errorCount > 1 ? "s" : ""}</span>
          ) : (
            <span className="badge ok" data-testid="validity">valid</span>
          )}
          {saved && <span className="badge" data-testid="saved-version">v{saved.version}{dirty ? " · unsaved" : ""}</span>}
          <button className="primary" onClick={() => void save()} disabled={!nodes.length}>Save</button>
          <button onClick={() => void startRun()} disabled={!nodes.length || errorCount > 0}>Run…</button>
          <button onClick={() => setNodes(layout(nodes, edges))} disabled={!nodes.length}>Auto-layout</button>
          <button onClick={() => fileInput.current?.click()}>Import</button>
          <button onClick={exportFile} disabled={!nodes.length}>Export</button>
          <button onClick={() => setPanel(panel === "versions" ? "edit" : "versions")} disabled={!saved}>Versions</button>
          <span className="toolbar-group" role="group" aria-label="edit">
            <button onClick={editing.undo} disabled={!editing.canUndo || !!comparison} title="Undo (Ctrl+Z)">Undo</button>
            <button onClick={editing.redo} disabled={!editing.canRedo || !!comparison} title="Redo (Ctrl+Shift+Z)">Redo</button>
            <button onClick={editing.paste} disabled={!!comparison} title="Paste (Ctrl+V)">Paste</button>
            <button onClick={() => setHelp(true)} aria-label="keyboard shortcuts" title="Keyboard shortcuts (?)">?</button>
          </span>
          <input ref={fileInput} type="file" accept="application/json,.json" hidden onChange={(e) => e.target.files?.[0] && void importFile(e.target.files[0])} />
        </div>
        {message && (
          <div className={message.error ? "alert" : "notice"} role={message.error ? "alert" : "status"} style={{ margin: "6px 10px" }}>
            {message.text} <button onClick={() => setMessage(null)}>×</button>
          </div>
        )}
        <div
          className="flow"
          ref={flowBox}
          onDragOver={(e) => { e.preventDefault(); e.dataTransfer.dropEffect = "move"; }}
          onDrop={onDrop}
          onPointerMove={(e) => (pointer.current = { x: e.clientX, y: e.clientY })}
          onPointerLeave={() => (pointer.current = null)}
          data-testid="canvas"
        >
          <ReactFlow
            nodes={shownNodes}
            edges={shownEdges}
            nodeTypes={nodeTypes}
            onNodesChange={comparison ? undefined : onNodesChange}
            onEdgesChange={comparison ? undefined : onEdgesChange}
            onConnect={comparison ? undefined : onConnect}
            deleteKeyCode={null}
            nodesConnectable={!comparison}
            defaultViewport={{ x: 0, y: 0, zoom: 1 }}
            minZoom={0.05}
          >
            <Background />
            <Controls />
            <MiniMap pannable zoomable />
          </ReactFlow>
        </div>
      </section>
      <aside className="panel" aria-label="editor">
        {panel === "versions" && saved ? (
          <VersionsPanel
            workflow={saved.name}
            comparison={comparison}
            onCompare={setComparison}
            onOpen={(def, version) => {
              setComparison(null);
              load(def, saved.name);
              setMessage({ text: `Opened version ${version}; saving makes it the latest again.` });
            }}
          />
        ) : selectedNodes.length > 1 ? (
          <SelectionEditor nodes={selectedNodes} onCopy={editing.copy} onCut={editing.cut} onDuplicate={editing.duplicate} onDelete={editing.remove} />
        ) : selectedNode ? (
          <NodeEditor
            node={selectedNode}
            nodes={nodes}
            edges={edges}
            inputs={meta.inputs}
            schema={types.find((t) => t.type === selectedNode.data.spec.type)?.config_schema}
            errors={pinned.nodes[selectedNode.id] ?? []}
            warnings={pinnedWarnings.nodes[selectedNode.id] ?? []}
            setNodes={setNodes}
            setEdges={setEdges}
            onDelete={editing.remove}
          />
        ) : selectedEdgeIndex >= 0 ? (
          <EdgeEditor
            edge={edges[selectedEdgeIndex]}
            sourceType={nodes.find((n) => n.id === edges[selectedEdgeIndex].source)?.data.spec.type}
            errors={pinned.edges[selectedEdgeIndex] ?? []}
            setEdges={setEdges}
            onDelete={editing.remove}
          />
        ) : (
          <WorkflowEditor meta={meta} setMeta={setMeta} validation={validation} workflowErrors={pinned.workflow} workflowWarnings={pinnedWarnings.workflow} />
        )}
      </aside>
      {running && saved && (
        <RunDialog
          workflow={saved.name}
          version={saved.version}
          inputs={meta.inputs}
          onClose={() => setRunning(false)}
        />
      )}
      {help && <ShortcutHelp onClose={() => setHelp(false)} />}
    </>
  );
}
