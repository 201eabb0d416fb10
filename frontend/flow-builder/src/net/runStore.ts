// A run's live view: the event reducer fed by one EventSocket, exposed to React through useSyncExternalStore.
import { useEffect, useMemo, useSyncExternalStore } from "react";
import type { RunEvent } from "../api/types";
import { applyAttemptEvents, emptyAttempts, type AttemptsView } from "../state/attempts";
import { applyEvents, emptyRunView, type RunView } from "../state/runEvents";
import { EventSocket, type SocketStatus } from "./eventSocket";

export type LiveRun = { view: RunView; attempts: AttemptsView; status: SocketStatus; detail?: string };

class RunStore {
  private state: LiveRun = { view: emptyRunView(), attempts: emptyAttempts(), status: "connecting" };
  private listeners = new Set<() => void>();
  private socket: EventSocket;

  constructor(runId: string, token: string) {
    this.socket = new EventSocket({
      path: `/ws/runs/${encodeURIComponent(runId)}`,
      token,
      cursor: () => this.state.view.lastId,
      onEvents: (events: RunEvent[]) =>
        this.set({
          ...this.state,
          view: applyEvents(this.state.view, events),
          attempts: applyAttemptEvents(this.state.attempts, events),
        }),
      onStatus: (status, detail) => this.set({ ...this.state, status, detail }),
    });
  }

  private set(next: LiveRun): void {
    const same = next.view === this.state.view && next.attempts === this.state.attempts;
    if (same && next.status === this.state.status && next.detail === this.state.detail) return;
    this.state = next;
    for (const listener of this.listeners) listener();
  }

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = (): LiveRun => this.state;

  start(): void {
    this.socket.start();
  }

  stop(): void {
    this.socket.stop();
  }

  /** Follow the run again after its stream ended (the fanout closes it when the run ends): it was resumed. */
  restart = (): void => {
    if (this.state.status === "ended") this.socket.start();
  };
}

/** The live view of ``runId``: events from the start, then live, deduplicated across reconnects. */
export function useLiveRun(runId: string, token: string): LiveRun & { restart: () => void } {
  const store = useMemo(() => new RunStore(runId, token), [runId, token]);
  useEffect(() => {
    store.start();
    return () => store.stop();
  }, [store]);
  return { ...useSyncExternalStore(store.subscribe, store.snapshot), restart: store.restart };
}
