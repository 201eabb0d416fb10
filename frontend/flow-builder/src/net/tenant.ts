// Tenant-wide live data from /ws/tenant: pending approvals (read once per connection, then kept from the feed's
// events, never polled) and the feed itself for pages that follow it (the runs page).
import { useEffect, useSyncExternalStore } from "react";
import type { Api } from "../api/client";
import type { Approval, Page, RunEvent } from "../api/types";
import { applyApprovalEvent, emptyFeed, mergeListed, type ApprovalFeed } from "../state/approvalFeed";
import { compareIds } from "../state/runEvents";
import { notifyApproval } from "./desktopNotify";
import { EventSocket, type SocketStatus } from "./eventSocket";

export type TenantState = {
  approvals: Approval[];
  decided: Set<string>;
  feed: SocketStatus;
  lastId: string;
  error?: string;
};

type EventListener = (events: RunEvent[]) => void;

class TenantStore {
  state: TenantState = { approvals: [], decided: new Set(), feed: "connecting", lastId: "0-0" };
  private approvalFeed: ApprovalFeed = emptyFeed();
  private listeners = new Set<() => void>();
  private eventListeners = new Set<EventListener>();
  private socket: EventSocket | null = null;
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

  /** Call ``listener`` with each batch of tenant events from now on; returns the unsubscribe. */
  onEvents(listener: EventListener): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  acquire(api: Api): void {
    this.users += 1;
    if (this.api === api) return;
    this.socket?.stop();
    this.users = 1;
    this.api = api;
    this.approvalFeed = emptyFeed();
    this.start(api);
  }

  release(): void {
    this.users -= 1;
    if (this.users > 0) return;
    this.api = null;
    this.socket?.stop();
    this.socket = null;
  }

  private start(api: Api): void {
    // Stream ids are millisecond timestamps: starting a little before the list is read misses nothing.
    const since = `${Date.now() - 5000}-0`;
    this.set({ lastId: since, approvals: [] });
    this.socket = new EventSocket({
      path: "/ws/tenant",
      token: api.key,
      cursor: () => this.state.lastId,
      onEvents: (events) => this.receive(events),
      onStatus: (feed, detail) => {
        this.set({ feed, error: feed === "error" ? detail : undefined });
        // Each (re)connection reads the pending list once: what the feed missed while away is in it.
        if (feed === "live") void this.readApprovals(api);
      },
    });
    this.socket.start();
  }

  private receive(events: RunEvent[]): void {
    let lastId = this.state.lastId;
    let feed = this.approvalFeed;
    const fresh: RunEvent[] = [];
    for (const event of events) {
      if (compareIds(event.id, lastId) <= 0) continue;
      lastId = event.id;
      fresh.push(event);
      const applied = applyApprovalEvent(feed, event);
      feed = applied.feed;
      if (applied.arrived) notifyApproval(applied.arrived);
    }
    this.approvalFeed = feed;
    this.set({ lastId, approvals: this.visible(feed) });
    for (const listener of this.eventListeners) listener(fresh);
  }

  private visible(feed: ApprovalFeed): Approval[] {
    return feed.pending.filter((a) => !this.state.decided.has(a.id));
  }

  private async readApprovals(api: Api): Promise<void> {
    try {
      const page = await api.get<Page<Approval>>("/api/v1/approvals?status=pending&limit=200");
      if (this.api !== api) return;
      this.approvalFeed = mergeListed(this.approvalFeed, page.items);
      this.set({ approvals: this.visible(this.approvalFeed) });
    } catch (error) {
      // A 401 already sent the user back to the login page; anything else waits for the next connection.
      this.set({ error: `pending approvals could not be read: ${String(error)}` });
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

/** Pending approvals and the tenant feed's status, live while a component uses them. */
export function useTenant(api: Api): TenantState {
  useEffect(() => {
    tenant.acquire(api);
    return () => tenant.release();
  }, [api]);
  return useSyncExternalStore(tenant.subscribe, tenant.snapshot);
}

/** Call ``listener`` with every batch of tenant events while the calling component is mounted. */
export function useTenantEvents(api: Api, listener: EventListener): void {
  useTenant(api);
  useEffect(() => tenant.onEvents(listener), [listener]);
}
