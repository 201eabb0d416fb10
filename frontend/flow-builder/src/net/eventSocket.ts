// One WebSocket to the fanout that keeps itself connected: it sends the key as its first message, batches
// incoming events per frame, and reconnects after the last applied event (close 4408 after a resync included).
import { fanoutUrl } from "../api/client";
import type { RunEvent } from "../api/types";
import { parseMessage } from "../state/runEvents";

export type SocketStatus = "connecting" | "live" | "reconnecting" | "ended" | "error";

export type SocketOptions = {
  path: string;
  token: string;
  /** The cursor to resume after: the last event the caller applied. */
  cursor: () => string;
  onEvents: (events: RunEvent[]) => void;
  onStatus: (status: SocketStatus, detail?: string) => void;
};

const MAX_BACKOFF_MS = 10_000;

export class EventSocket {
  private socket: WebSocket | null = null;
  private pending: RunEvent[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private backoffMs = 500;
  private stopped = false;

  constructor(private readonly options: SocketOptions) {}

  start(): void {
    this.stopped = false;
    void this.connect(false);
  }

  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.flush();
    const socket = this.socket;
    this.socket = null;
    socket?.close(1000, "view closed");
  }

  private async connect(again: boolean): Promise<void> {
    if (this.stopped) return;
    this.options.onStatus(again ? "reconnecting" : "connecting");
    const base = await fanoutUrl();
    if (this.stopped) return;
    const separator = this.options.path.includes("?") ? "&" : "?";
    const url = `${base}${this.options.path}${separator}after=${encodeURIComponent(this.options.cursor())}`;
    const socket = new WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      socket.send(JSON.stringify({ token: this.options.token }));
      this.options.onStatus("live");
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      const parsed = parseMessage(String(message.data));
      if (parsed.kind === "event") {
        this.pending.push(parsed.event);
        this.backoffMs = 500;
        this.flushTimer ??= setTimeout(() => this.flush(), 50);
      } else if (parsed.kind === "resync") {
        // The close with 4408 follows; everything before it is applied first so the cursor is exact.
        this.flush();
      }
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.flush();
      this.closed(event.code, event.reason);
    };
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (!this.pending.length) return;
    const batch = this.pending;
    this.pending = [];
    this.options.onEvents(batch);
  }

  private closed(code: number, reason: string): void {
    if (this.stopped) return;
    if (code === 1000) return this.options.onStatus("ended");
    if (code === 4401) return this.options.onStatus("error", `not authorised by the fanout: ${reason || "bad key"}`);
    if (code === 4404) return this.options.onStatus("error", reason || "not found");
    if (code === 4400) return this.options.onStatus("error", reason || "bad request");
    const delay = code === 4408 ? 0 : this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, MAX_BACKOFF_MS);
    this.options.onStatus("reconnecting", code === 4408 ? "resync" : `connection lost (${code})`);
    this.retryTimer = setTimeout(() => void this.connect(true), delay);
  }
}
