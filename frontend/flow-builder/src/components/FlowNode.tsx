// How a node looks on every canvas: type, id, and whatever the page overlays (errors, run state, diff, patches).
import { Handle, Position, type NodeProps } from "@xyflow/react";
import type { FlowNode } from "../state/graph";

export type NodeOverlay = {
  errors?: string[];
  status?: string;
  meta?: string;
  diff?: "added" | "removed" | "changed" | "same";
  patched?: boolean;
  approval?: boolean;
};

export function AobNode({ id, data, selected }: NodeProps<FlowNode>) {
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

export const nodeTypes = { aob: AobNode };
