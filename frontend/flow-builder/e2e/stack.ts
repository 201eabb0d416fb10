// Vitest global setup of the browser tests: one real `aob up` stack (embedded Redis and Postgres under a temp
// AOB_DATA_DIR, free ports), ready once it prints `aob up: ready` and both servers answer; stopped after.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { TestProject } from "vitest/node";

export const REPO = resolve(__dirname, "../../..");

/** ``llmUrl``: the scripted demo LLM `aob up` started for agents (its `/_script` sets what the model says).
 * ``receiverPort``: a free port the HTTP node and notification webhooks may reach on 127.0.0.1 (their address
 * checks refuse loopback otherwise), for a receiver a test starts itself. */
export type Stack = {
  api: string;
  adminKey: string;
  redisUrl: string;
  python: string;
  receiverPort: number;
  llmUrl: string;
};

declare module "vitest" {
  export interface ProvidedContext {
    stack: Stack;
  }
}

function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.unref();
    server.on("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address ? address.port : 0));
    });
  });
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what}: not within ${timeoutMs / 1000} s; aob up said:\n${log().slice(-4000)}`);
}

let child: ChildProcess | null = null;
let dataDir: string | null = null;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (!existsSync(join(REPO, "frontend/flow-builder/dist/index.html"))) {
    throw new Error("frontend/flow-builder/dist is missing: run `npm run build` before the browser tests");
  }
  const aob = process.env.AOB_BIN ?? join(REPO, ".venv/bin/aob");
  dataDir = mkdtempSync(join(tmpdir(), "aob-e2e-"));
  const [apiPort, fanoutPort, receiverPort] = [await freePort(), await freePort(), await freePort()];
  const adminKey = `aob_e2e_${Math.random().toString(36).slice(2)}${Date.now()}`;
  let output = "";
  child = spawn(aob, ["up"], {
    cwd: REPO,
    env: {
      ...process.env,
      AOB_DATA_DIR: dataDir,
      AOB_API_PORT: String(apiPort),
      AOB_FANOUT_PORT: String(fanoutPort),
      AOB_ADMIN_KEY: adminKey,
      AOB_LOG_JSON: "false",
      AOB_REDIS_URL: "",
      AOB_DATABASE_URL: "",
      AOB_HTTP_ALLOWLIST: `127.0.0.1:${receiverPort}`,
      AOB_NOTIFY_ALLOWLIST: `127.0.0.1:${receiverPort}`,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.on("data", (chunk) => (output += chunk));
  child.stderr?.on("data", (chunk) => (output += chunk));
  const exited = new Promise<void>((done) => child?.once("exit", () => done()));
  const api = `http://127.0.0.1:${apiPort}`;
  await until(async () => output.includes("aob up: ready"), "aob up: ready", 60_000, () => output);
  await until(async () => (await fetch(`${api}/readyz`)).ok, `${api}/readyz`, 60_000, () => output);
  await until(async () => (await fetch(`http://127.0.0.1:${fanoutPort}/readyz`)).ok, "fanout /readyz", 60_000, () => output);
  const redisUrl = /^redis: (\S+)/m.exec(output)?.[1] ?? "";
  const llmPort = /using the scripted demo LLM on port (\d+)/.exec(output)?.[1];
  const llmUrl = llmPort ? `http://127.0.0.1:${llmPort}` : "";
  project.provide("stack", { api, adminKey, redisUrl, python: join(REPO, ".venv/bin/python"), receiverPort, llmUrl });
  return async () => {
    child?.kill("SIGTERM");
    const killer = setTimeout(() => child?.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(killer);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
