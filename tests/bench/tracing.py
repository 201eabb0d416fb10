"""Tracing benchmark (not a test): what OpenTelemetry costs the engine, off and on.

One coordinator and one built-in worker process run 500 runs of a 10-node chain in four modes, each round in a new
order: ``main`` (the code before tracing, from ``git archive $AOB_BENCH_BASE``, default ``main``), ``off`` (this
code, no endpoint: no SDK), ``on, runs untraced`` (an endpoint, runs started without a traceparent) and ``on``
(every run traced; spans go to a local OTLP/HTTP receiver in this process). Prints a Markdown section (appended to
``$AOB_BENCH_REPORT``, default docs/benchmarks.md) and, last, one JSON line. Run: ``python -m tests.bench.tracing``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from common.db import migrate
from common.keys import Keys
from common.redis_client import connect_redis
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_runs
from common.workflow.compiler import compile_definition
from tests.bench.engine import DATABASE_URL, REDIS_URL, TENANT, Cpu, _cleanup, definition, wait_runs
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import ServiceProcess

ROUNDS = int(os.environ.get("AOB_BENCH_TRACING_ROUNDS", "3"))
RUNS = 500
MODES = ("main", "off", "on, runs untraced", "on")
REPO = Path(__file__).resolve().parents[2]


def base_checkout() -> Path:
    """The code before tracing, unpacked from git into a temporary directory (nothing is checked out)."""
    target = Path(tempfile.mkdtemp(prefix="aob-bench-base-"))
    base = os.environ.get("AOB_BENCH_BASE", "main")
    archive = subprocess.run(["git", "archive", base], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


async def chain_round(scripts: Scripts, env: dict[str, str], traced: bool, logs: Path) -> dict[str, Any]:
    """Start the services with ``env``, warm up, then 200 chains at once; their rate and CPU per transition."""
    services = {
        "coordinator": ServiceProcess(["coordinator"], env, logs / "coordinator.log"),
        "worker": ServiceProcess(["worker", "builtin"], env, logs / "worker.log"),
    }
    redis, keys = scripts.redis, scripts.keys
    ir = compile_definition(definition("c10")).ir
    traceparent = "00-{}-{}-01"
    try:
        for service in services.values():
            service.start()
        await asyncio.sleep(2.0)
        pids = {name: s.proc.pid for name, s in services.items() if s.proc is not None}
        figures: dict[str, Any] = {}
        for runs in (20, RUNS):  # a warm-up, then the measured burst
            cursor = (await redis.xinfo_stream(keys.tenant_events(TENANT)))["last-generated-id"]
            run_ids = [uuid.uuid4().hex for _ in range(runs)]
            starts = [
                (
                    RunStart(
                        r, TENANT, "wf", "c10", 1, {}, traceparent=traceparent.format(r, r[:16]) if traced else None
                    ),
                    ir,
                )
                for r in run_ids
            ]
            cpu = Cpu(pids)
            started = time.perf_counter()
            await start_runs(scripts, starts, max_agents=5)
            await wait_runs(redis, keys, run_ids, cursor)
            elapsed = time.perf_counter() - started
            figures = {"transitions_per_s": runs * 10 / elapsed, "cpu_us": cpu.per_transition_us(runs * 10)}
        return figures
    finally:
        for service in services.values():
            service.stop()


async def run(prefix: str, schema: str) -> dict[str, list[dict[str, Any]]]:
    await migrate(DATABASE_URL, schema)
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1)", TENANT)
    await conn.close()
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_WORKER_CONCURRENCY": "64",
    }
    base = base_checkout()
    redis = connect_redis(REDIS_URL)
    scripts = Scripts(redis, Keys(prefix))
    await redis.xadd(scripts.keys.tenant_events(TENANT), {"e": json.dumps({"type": "bench_marker"})})
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    logs = Path(tempfile.mkdtemp(prefix="aob-bench-tracing-"))
    try:
        with OtlpReceiver() as receiver:
            traced_env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
            envs = {
                "main": {**env, "PYTHONPATH": str(base)},
                "off": env,
                "on, runs untraced": traced_env,
                "on": traced_env,
            }
            for round_ in range(ROUNDS):
                # A new order each round: the machine's load drifts, and a fixed order would charge it to one mode.
                for mode in random.Random(round_).sample(MODES, len(MODES)):
                    results[mode].append(await chain_round(scripts, envs[mode], mode == "on", logs))
            spans = len(receiver.spans)
    finally:
        await _cleanup(redis, prefix)
        await redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    print(f"spans received: {spans}")
    return results


def report(results: dict[str, list[dict[str, Any]]]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"\n## Tracing — {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit or 'unknown'}\n",
        f"{RUNS} runs of a 10-node chain at once, one coordinator and one built-in worker process (concurrency 64),"
        f" {ROUNDS} rounds in a shuffled order per mode, medians (spread in brackets). `main`: the code before tracing;"
        " `off`: no OTLP endpoint (no SDK loaded); `on, runs untraced`: an endpoint, runs without a traceparent;"
        " `on`: every run traced (a node span per attempt in the worker, an apply span per signal in the"
        " coordinator, exported to a local OTLP/HTTP receiver). CPU is µs per transition.\n",
        "| mode | transitions/s | CPU µs coordinator | CPU µs worker |",
        "|---|---|---|---|",
    ]
    for mode, rounds in results.items():
        rates = [r["transitions_per_s"] for r in rounds]
        coordinator = [r["cpu_us"]["coordinator"] for r in rounds]
        worker = [r["cpu_us"]["worker"] for r in rounds]
        lines.append(
            f"| {mode} | {statistics.median(rates):,.0f} ({min(rates):,.0f}-{max(rates):,.0f}) |"
            f" {statistics.median(coordinator):.0f} ({min(coordinator):.0f}-{max(coordinator):.0f}) |"
            f" {statistics.median(worker):.0f} ({min(worker):.0f}-{max(worker):.0f}) |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with Path(os.environ.get("AOB_BENCH_REPORT", REPO / "docs" / "benchmarks.md")).open("a") as out:
        out.write(text)
    print(json.dumps(results))


async def main() -> None:
    tag = uuid.uuid4().hex[:8]
    report(await run(f"benchtr{tag}:", f"bench_tr_{tag}"))


if __name__ == "__main__":
    asyncio.run(main())
