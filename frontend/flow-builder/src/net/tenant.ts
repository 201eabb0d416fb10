// Tenant-wide live data: the runs list (fed by /ws/tenant) and pending approvals (decided ones vanish at once).
import { useEffect, useSyncExternalStore } from "react";
import type { Api } from "../api/client";
import type { Approval, Page, Run, RunEvent } from "../api/types";
import { compareIds } from "../state/runEvents";
import { EventSocket, type SocketStatus } from "./eventSocket";

export type RunRow = Pick<Run, "id" | "workflow_name" | "version" | "status" | "created_at"> & { patches?: number };

export type TenantState = {
  runs: RunRow[];
  approvals: Approval[];
  decided: Set<string>;
  feed: SocketStatus;
  lastId: string;
  error?: string;
};

const APPROVALS_POLL_MS = 2000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "timed_out"]);

/** ``rows`` with one tenant event applied (pure; exported for tests). */
export function applyTenantEvent(rows: RunRow[], event: RunEvent): RunRow[] {
  const index = rows.findIndex((r) => r.id === event.run_id);
  const row: RunRow =
    index >= 0
      ? { ...rows[index] }
      : { id: event.run_id, workflow_name: "", version: 0, status: "queued", created_at: new Date(event.ts).toISOString() };
  const data = event.data ?? {};
  if (event.type === "run_started") {
    row.status = row.status === "queued" ? "running" : row.status;
    if (typeof data.workflow_name === "string") row.workflow_name = data.workflow_name;
    if (typeof data.version === "number") row.version = data.version;
  } else if (event.type === "run_resumed") row.status = "running";
  else if (event.type === "workflow_patched") row.patches = (row.patches ?? 0) + 1;
  else if (event.type.startsWith("run_")) {
    const status = event.type.slice(4);
    if (TERMINAL.has(status)) row.status = status as Run["status"];
  }
  if (index >= 0) return rows.map((r, i) => (i === index ? row : r));
  return [row, ...rows];
}

class TenantStore {
  state: TenantState = { runs: [], approvals: [], decided: new Set(), feed: "connecting", lastId: "0-0" };
  private listeners = new Set<() => void>();
  private socket: EventSocket | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private users = 0;
  api: Api | null = null;

  set(patch: Partial<TenantState>): void {
    this.state = { ...this.state, ...patch };
    for (const listener of this.listeners) listener();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = (): TenantState => this.state;

  acquire(api: Api): void {
    this.users += 1;
    if (this.api === api) return;
    this.stopFeeds();
    this.users = 1;
    this.api = api;
    void this.start(api);
  }

  release(): void {
    this.users -= 1;
    if (this.users > 0) return;
    this.api = null;
    this.stopFeeds();
  }

  private stopFeeds(): void {
    this.socket?.stop();
    this.socket = null;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }

  private async start(api: Api): Promise<void> {
    // Stream ids are millisecond timestamps: starting a little before the list is read misses nothing.
    const since = `${Date.now() - 5000}-0`;
    try {
      const page = await api.get<Page<RunRow>>("/api/v1/runs?limit=100");
      const known = new Map(this.state.runs.map((r) => [r.id, r]));
      this.set({ runs: page.items.map((r) => ({ ...known.get(r.id), ...r })), lastId: since });
    } catch (error) {
      this.set({ error: String(error) });
    }
    if (this.api !== api) return;
    this.socket = new EventSocket({
      path: "/ws/tenant",
      token: api.key,
      cursor: () => this.state.lastId,
      onEvents: (events) => {
        let runs = this.state.runs;
        let lastId = this.state.lastId;
        for (const event of events) {
          if (compareIds(event.id, lastId) <= 0) continue;
          runs = applyTenantEvent(runs, event);
          lastId = event.id;
        }
        this.set({ runs, lastId });
        void this.refreshApprovals();
      },
      onStatus: (feed, detail) => this.set({ feed, error: feed === "error" ? detail : this.state.error }),
    });
    this.socket.start();
    void this.refreshApprovals();
    this.poll = setInterval(() => void this.refreshApprovals(), APPROVALS_POLL_MS);
  }

  async refreshApprovals(): Promise<void> {
    const api = this.api;
    if (!api) return;
    try {
      const page = await api.get<Page<Approval>>("/api/v1/approvals?status=pending&limit=100");
      if (this.api === api) this.set({ approvals: page.items.filter((a) => !this.state.decided.has(a.id)) });
    } catch {
      // The next poll tries again; a 401 already sent the user back to the login page.
    }
  }

  /** Decide ``approvalId``; it leaves every list and node at once. */
  async decide(approvalId: string, decision: "approve" | "reject", comment: string): Promise<void> {
    if (!this.api) throw new Error("not logged in");
    await this.api.post(`/api/v1/approvals/${encodeURIComponent(approvalId)}/decide`, { decision, comment: comment || null });
    const decided = new Set(this.state.decided).add(approvalId);
    this.set({ decided, approvals: this.state.approvals.filter((a) => a.id !== approvalId) });
  }
}

export const tenant = new TenantStore();

/** Tenant runs and pending approvals, live while a component uses them. */
export function useTenant(api: Api): TenantState {
  useEffect(() => {
    tenant.acquire(api);
    return () => tenant.release();
  }, [api]);
  return useSyncExternalStore(tenant.subscribe, tenant.snapshot);
}
