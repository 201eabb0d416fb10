"""Engine benchmark (not a test): one coordinator and one built-in worker process on the local Redis.

Scenarios: (a) 200 runs of a 10-node chain, (b) 50 runs of a 1 -> 50 -> 1 fan-out/fan-in, (c) 1,000 single-node
runs submitted at once, (d) one 50-node chain alone, whose hops show the latency without queueing.
Prints node transitions/s, hop latency (worker completion -> next token queued) and run
latency, compares with a Celery chain on the same Redis, and appends the figures to docs/benchmarks.md.
Run: ``make bench`` or ``python -m tests.bench.engine``.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from common.db import migrate
from common.keys import Keys
from common.redis_client import connect_redis
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_run
from common.workflow.compiler import compile_definition
from tests.support.processes import ServiceProcess

REDIS_URL = os.environ.get("AOB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("AOB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def chain(n: int) -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "noop"} for i in range(n)]
    return {"name": "chain", "nodes": nodes, "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]}


def fan(width: int) -> dict[str, Any]:
    nodes = [{"id": "src", "type": "noop"}, {"id": "sink", "type": "noop"}]
    nodes += [{"id": f"f{i}", "type": "noop"} for i in range(width)]
    edges = [{"from": "src", "to": f"f{i}"} for i in range(width)] + [
        {"from": f"f{i}", "to": "sink"} for i in range(width)
    ]
    return {"name": "fan", "nodes": nodes, "edges": edges}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def scenario(scripts: Scripts, name: str, definition: dict[str, Any], runs: int) -> dict[str, Any]:
    """Submit ``runs`` runs at once, wait for all, and measure from their stored node states."""
    redis, keys = scripts.redis, scripts.keys
    ir = compile_definition(definition).ir
    run_ids = [uuid.uuid4().hex for _ in range(runs)]
    started = time.perf_counter()
    await asyncio.gather(
        *(start_run(scripts, RunStart(r, "bench", "wf", name, 1, {}), ir, max_agents=5) for r in run_ids)
    )
    # Waiting on the tenant's event stream keeps the benchmark from competing with the engine for the CPU.
    pending = set(run_ids)
    cursor = "0-0"
    while pending:
        reply = await redis.xread({keys.tenant_events("bench"): cursor}, count=1000, block=1000)
        for _, entries in reply:
            for entry_id, fields in entries:
                cursor = entry_id
                event = json.loads(fields["e"])
                if event["type"].removeprefix("run_") in TERMINAL_RUN_STATUSES:
                    pending.discard(event["run_id"])
    elapsed = time.perf_counter() - started
    hops: list[float] = []
    pickups: list[float] = []
    run_ms: list[float] = []
    transitions = 0
    failed = 0
    for r in run_ids:
        states = {k: json.loads(v) for k, v in (await redis.hgetall(keys.nodes(r))).items()}
        run = await redis.hgetall(keys.run(r))
        failed += run["status"] != "succeeded"
        run_ms.append(float(run["ended_ms"]) - float(run["started_ms"]))
        transitions += len(states)
        pickups += [state["queue_ms"] for state in states.values() if "queue_ms" in state]
        for src, edges in ir.successors.items():
            for edge in edges:
                hops.append(states[edge.to]["queued_at"] - states[src]["ended_at"])
    return {
        "scenario": name,
        "runs": runs,
        "failed": failed,
        "transitions": transitions,
        "seconds": elapsed,
        "transitions_per_s": transitions / elapsed,
        "hop_p50_ms": pct(hops, 0.5),
        "hop_p95_ms": pct(hops, 0.95),
        "hop_p99_ms": pct(hops, 0.99),
        "pickup_p50_ms": pct(pickups, 0.5),
        "run_p50_ms": pct(run_ms, 0.5),
        "run_p99_ms": pct(run_ms, 0.99),
    }


def celery_chain(tasks: int, prefix: str) -> float | None:
    """Tasks/s of a Celery chain of ``tasks`` no-ops (prefork, concurrency 2); ``None`` if Celery is absent."""
    try:
        import celery  # noqa: F401
    except ImportError:
        print("celery not installed (pip install 'celery[redis]'): no baseline")
        return None
    env = {**os.environ, "BENCH_CELERY_BROKER": REDIS_URL.rsplit("/", 1)[0] + "/15"}
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.bench._celery_app",
            "worker",
            "-c",
            "2",
            "-P",
            "prefork",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            prefix,
            "-l",
            "WARNING",
        ],
        env=env,
    )
    try:
        os.environ["BENCH_CELERY_BROKER"] = env["BENCH_CELERY_BROKER"]
        from celery import chain as celery_chain_of

        from tests.bench._celery_app import noop

        warm = noop.s().set(queue=prefix).apply_async()
        warm.get(timeout=60)
        started = time.perf_counter()
        result = celery_chain_of(*(noop.s().set(queue=prefix) for _ in range(tasks))).apply_async()
        result.get(timeout=300)
        return tasks / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(30)


async def main() -> None:
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    await migrate(DATABASE_URL, schema)
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_WORKER_CONCURRENCY": "64",
    }
    logs = Path(tempfile.mkdtemp(prefix="aob-bench-"))
    services = [
        ServiceProcess(["coordinator"], env, logs / "coordinator.log"),
        ServiceProcess(["worker", "builtin"], env, logs / "worker.log"),
    ]
    redis = connect_redis(REDIS_URL)
    scripts = Scripts(redis, Keys(prefix))
    results = []
    try:
        for service in services:
            service.start()
        await asyncio.sleep(2.0)
        await scenario(scripts, "warm-up", chain(3), 20)
        results.append(await scenario(scripts, "200 runs x 10-node chain", chain(10), 200))
        results.append(await scenario(scripts, "50 runs x 1->50->1 fan-out/in", fan(50), 50))
        results.append(await scenario(scripts, "1000 single-node runs at once", chain(1), 1000))
        results.append(await scenario(scripts, "1 run x 50-node chain (no queueing)", chain(50), 1))
    finally:
        for service in services:
            service.stop()
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    celery_rate = celery_chain(200, f"{prefix}celery")
    report(results, celery_rate)


def report(results: list[dict[str, Any]], celery_rate: float | None) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"\n## Engine — {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit or 'unknown'}\n",
        "One coordinator process and one built-in worker process, Redis 7 on loopback, 2 cores. A hop is a worker's"
        " completion to the next token queued; pickup is queued to started (time spent waiting for the worker).\n",
        "| scenario | runs | failed | transitions/s | hop p50 / p95 / p99 ms | pickup p50 ms | run p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['scenario']} | {r['runs']} | {r['failed']} | {r['transitions_per_s']:,.0f} | "
            f"{r['hop_p50_ms']:.2f} / {r['hop_p95_ms']:.2f} / {r['hop_p99_ms']:.2f} | {r['pickup_p50_ms']:.2f} | "
            f"{r['run_p50_ms']:.1f} / {r['run_p99_ms']:.1f} |"
        )
    chain_rate = results[0]["transitions_per_s"]
    if celery_rate:
        lines.append(
            f"\nCelery 5 chain of 200 no-op tasks on the same Redis (prefork, concurrency 2): {celery_rate:,.0f} "
            f"tasks/s; aob's 10-node chains ran {chain_rate / celery_rate:.1f}x that rate."
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if not REPORT.exists():
        REPORT.write_text("# Benchmarks\n\nFigures appended by the benchmark scripts in tests/bench/.\n")
    with REPORT.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    asyncio.run(main())
