// A local HTTP server on the stack's receiver port (the one address the HTTP node and notification webhooks may
// reach): keeps every request and answers with what ``answer`` returns.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { inject } from "vitest";

export type Received = { method: string; path: string; headers: IncomingHttpHeaders; body: string };
export type Answer = { status: number; body: unknown };

export class Receiver {
  readonly requests: Received[] = [];
  private server: Server | null = null;

  constructor(private readonly answer: (request: Received) => Answer) {}

  get url(): string {
    return `http://127.0.0.1:${inject("stack").receiverPort}`;
  }

  start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const request = { method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() };
        this.requests.push(request);
        const { status, body } = this.answer(request);
        res.writeHead(status, { "Content-Type": "application/json" });
        res.end(JSON.stringify(body));
      });
    });
    return new Promise((done) => this.server?.listen(inject("stack").receiverPort, "127.0.0.1", () => done()));
  }

  stop(): Promise<void> {
    return new Promise((done) => (this.server ? this.server.close(() => done()) : done()));
  }
}
