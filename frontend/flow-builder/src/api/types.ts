// Shapes of the aob API (ARCHITECTURE §1, §5, §7); only the fields the UI reads are typed.

export type JsonSchema = {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  additionalProperties?: boolean | JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
};

export type NodeSpec = {
  id: string;
  type: string;
  name?: string;
  description?: string;
  metadata?: Record<string, unknown>;
  config?: Record<string, unknown>;
  retry?: Record<string, unknown>;
  timeout_s?: number;
  join?: "all" | "any";
};

export type EdgeSpec = { from: string; to: string; when?: string; branch?: string };

export type Definition = {
  name?: string;
  description?: string;
  metadata?: Record<string, unknown>;
  inputs?: JsonSchema;
  nodes: NodeSpec[];
  edges: EdgeSpec[];
  outputs?: Record<string, unknown>;
};

export type NodeType = { type: string; config_schema: JsonSchema };

export type Workflow = {
  id: string;
  name: string;
  version: number;
  definition: Definition;
  created_at: string;
  updated_at: string;
};

export type VersionInfo = { version: number; content_hash?: string; created_at: string; created_by?: string | null };

export type Validation = { valid: boolean; errors: string[]; warnings: string[] };

export type RunStatus = "queued" | "running" | "waiting" | "succeeded" | "failed" | "cancelled" | "timed_out";

export type NodeStatus = "pending" | "queued" | "running" | "waiting" | "succeeded" | "failed" | "skipped" | "retrying";

export type RunNode = {
  status: NodeStatus;
  attempt: number;
  output?: unknown;
  output_ref?: string;
  error?: unknown;
  queue_ms?: number | null;
  exec_ms?: number | null;
  started_at?: string | null;
  ended_at?: string | null;
};

export type Run = {
  id: string;
  workflow_id: string;
  workflow_name: string;
  version: number;
  status: RunStatus;
  inputs: Record<string, unknown>;
  outputs?: unknown;
  error?: unknown;
  nodes?: Record<string, RunNode>;
  ir_version?: number;
  created_at: string;
  started_at?: string | null;
  ended_at?: string | null;
  parent_run_id?: string | null;
  started_by?: string | null;
  schedule_id?: string | null;
  trigger_id?: string | null;
  children?: ChildRun[];
};

/** A run started by a workflow, loop or map node of another run. */
export type ChildRun = {
  id: string;
  parent_node_id: string | null;
  workflow_name: string | null;
  version: number | null;
  status: RunStatus;
  created_at: string | null;
};

export type Approval = {
  id: string;
  run_id: string;
  node_id: string;
  status: string;
  title: string;
  description?: string | null;
  created_at: string;
  expires_at?: string | null;
};

export type PatchRecord = {
  id: number | string;
  from_version: number;
  to_version: number;
  ops: PatchOp[];
  author: string;
  reason?: string | null;
  created_at: string;
};

export type PatchOp = { op: string; path: string; value?: unknown; from?: string };

/** One event as the fanout and SSE send it: its stream id is the resume cursor. */
export type RunEvent = {
  id: string;
  /** Schema version of the event (absent on events stored before versions); fields not listed here are ignored. */
  v?: number;
  type: string;
  run_id: string;
  node_id?: string;
  ts: number;
  data: Record<string, unknown>;
};

export type Page<T> = { items: T[]; next_cursor: string | null };
