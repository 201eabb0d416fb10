// How a node looks on every canvas: type, id, and whatever the page overlays (errors, run state, diff, patches).
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import type { FlowNode } from "../state/graph";

export type NodeOverlay = {
  errors?: string[];
  status?: string;
  meta?: string;
  diff?: "added" | "removed" | "changed" | "same";
  patched?: boolean;
  approval?: boolean;
};

function AobNodeView({ id, data, selected }: NodeProps<FlowNode>) {
  const overlay = (data.overlay ?? {}) as NodeOverlay;
  const classes = ["aob-node"];
  if (selected) classes.push("selected");
  if (overlay.errors?.length) classes.push("has-errors");
  if (overlay.status) classes.push(`status-${overlay.status}`);
  if (overlay.diff && overlay.diff !== "same") classes.push(`diff-${overlay.diff}`);
  if (overlay.patched) classes.push("patched");
  return (
    <div className={classes.join(" ")} data-testid={`node-${id}`} data-status={overlay.status ?? ""} title={overlay.errors?.join("\n")}>
      <Handle type="target" position={Position.Left} />
      <div className="type">{data.spec.type}</div>
      <div className="id">{data.spec.name || id}</div>
      {overlay.status && <span className="pill">{overlay.status}</span>}
      {overlay.meta && <div className="meta">{overlay.meta}</div>}
      {overlay.errors?.length ? <div className="err">{overlay.errors.length} error{overlay.errors.length > 1 ? "s" : ""}</div> : null}
      {overlay.approval && <span className="approval" data-testid={`approval-badge-${id}`}>approval</span>}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}

function sameOverlay(a: NodeOverlay = {}, b: NodeOverlay = {}): boolean {
  return (
    a.status === b.status &&
    a.meta === b.meta &&
    a.diff === b.diff &&
    a.patched === b.patched &&
    a.approval === b.approval &&
    (a.errors ?? []).join("\n") === (b.errors ?? []).join("\n")
  );
}

/** A node drawn again only when what it shows changed: the run view rebuilds every node's data per batch of
 * events, and without this each batch re-rendered all 1,000 nodes of a large run (npm run bench:ui). */
export const AobNode = memo(
  AobNodeView,
  (a, b) =>
    a.id === b.id &&
    a.selected === b.selected &&
    a.data.spec === b.data.spec &&
    sameOverlay(a.data.overlay as NodeOverlay | undefined, b.data.overlay as NodeOverlay | undefined),
);

export const nodeTypes = { aob: AobNode };
