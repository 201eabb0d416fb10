"""Engine benchmark (not a test): one coordinator and one built-in worker process on the local Redis, against a
bare skeleton of the same Redis work (tests/bench/_engine_skeleton.py) and a Celery chain, in one run.

Scenarios: 200 runs of a 10-node chain, 50 runs of a 1 -> 50 -> 1 fan-out/fan-in, 1,000 single-node runs started
at once (one ``start_runs`` call), one 50-node chain alone (hops without queueing). Then memory: Redis bytes per
finished 10-node chain, and the services' RSS and Redis memory after 50,000 and 100,000 transitions (hot
retention 10 s, so ended runs leave Redis as in production, only sooner). Prints a Markdown section (appended to
``$AOB_BENCH_REPORT``, default docs/benchmarks.md) and, last, one JSON line. Run: ``python -m tests.bench.engine``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.db import migrate
from common.keys import Keys
from common.redis_client import connect_redis
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_runs
from common.workflow.compiler import compile_definition
from tests.bench import _engine_skeleton as skeleton
from tests.bench._engine_report import celery_chain, report
from tests.bench._proc import cpu_s, rss_mb
from tests.support.processes import ServiceProcess

REDIS_URL = os.environ.get("AOB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("AOB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
TENANT = "bench"
HOT_RETENTION_S = 10
SCENARIOS = [
    ("chain", "200 runs x 10-node chain", "c10", 200),
    ("fan", "50 runs x 1->50->1 fan-out/in", "f50", 50),
    ("burst", "1000 single-node runs at once", "c1", 1000),
    ("hop", "1 run x 50-node chain (no queueing)", "c50", 1),
]
# Memory phase: waves of 10-node chains until this many transitions, sampled half-way and at the end.
MEMORY_TRANSITIONS = int(os.environ.get("AOB_BENCH_ENGINE_TRANSITIONS", "100000"))
MEMORY_WAVE_RUNS = 500


def definition(shape: str) -> dict[str, Any]:
    """The workflow of a skeleton shape: ``c<n>`` a chain of n noops, ``f<w>`` a 1 -> w -> 1 fan of noops."""
    size = int(shape[1:])
    if shape[0] == "c":
        nodes = [{"id": f"n{i}", "type": "noop"} for i in range(size)]
        edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(size - 1)]
        return {"name": "chain", "nodes": nodes, "edges": edges}
    nodes = [{"id": "src", "type": "noop"}, {"id": "sink", "type": "noop"}]
    nodes += [{"id": f"f{i}", "type": "noop"} for i in range(size)]
    edges = [{"from": "src", "to": f"f{i}"} for i in range(size)] + [
        {"from": f"f{i}", "to": "sink"} for i in range(size)
    ]
    return {"name": "fan", "nodes": nodes, "edges": edges}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Cpu:
    """CPU microseconds per transition of each watched process over one scenario."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {name: cpu_s(pid) for name, pid in pids.items()}

    def per_transition_us(self, transitions: int) -> dict[str, float]:
        return {
            name: round((cpu_s(pid) - self.before[name]) * 1e6 / max(1, transitions), 1)
            for name, pid in self.pids.items()
        }


async def wait_runs(redis: aioredis.Redis, keys: Keys, run_ids: list[str], cursors: dict[str, str]) -> dict[str, str]:
    """Wait on the tenant's event streams, every shard's in one read (not polling the runs), until every run ended;
    returns the cursors."""
    pending = set(run_ids)
    cursors = dict(cursors)
    while pending:
        reply = await redis.xread(cursors, count=1000, block=1000)
        for stream, entries in reply:
            for entry_id, fields in entries:
                cursors[stream] = entry_id
                event = json.loads(fields["e"])
                if event["type"].removeprefix("run_") in TERMINAL_RUN_STATUSES:
                    pending.discard(event["run_id"])
    return cursors


async def tenant_cursors(redis: aioredis.Redis, keys: Keys) -> dict[str, str]:
    """The end of each shard's tenant stream (the streams exist: ``run_engine`` marks each)."""
    return {s: (await redis.xinfo_stream(s))["last-generated-id"] for s in keys.tenant_events(TENANT)}


async def start_all(scripts: Scripts, shape: str, runs: int) -> list[str]:
    ir = compile_definition(definition(shape)).ir
    run_ids = [uuid.uuid4().hex for _ in range(runs)]
    starts = [(RunStart(r, TENANT, "wf", shape, 1, {}), ir) for r in run_ids]
    await start_runs(scripts, starts, max_agents=5)
    return run_ids


async def engine_scenario(
    scripts: Scripts, shape: str, runs: int, pids: dict[str, int]
) -> tuple[dict[str, Any], list[str]]:
    """Start ``runs`` runs of ``shape`` in one call, wait for all, and measure from their stored node states (read
    before hot retention expires them); returns the figures and the run ids."""
    redis, keys = scripts.redis, scripts.keys
    cursors = await tenant_cursors(redis, keys)
    cpu = Cpu(pids)
    started = time.perf_counter()
    run_ids = await start_all(scripts, shape, runs)
    await wait_runs(redis, keys, run_ids, cursors)
    elapsed = time.perf_counter() - started
    ir = compile_definition(definition(shape)).ir
    hops: list[float] = []
    run_ms: list[float] = []
    transitions = failed = 0
    for r in run_ids:
        states = {k: json.loads(v) for k, v in (await redis.hgetall(keys.nodes(r))).items()}
        run = await redis.hgetall(keys.run(r))
        failed += run["status"] != "succeeded"
        run_ms.append(float(run["ended_ms"]) - float(run["started_ms"]))
        transitions += len(states)
        for src, edges in ir.successors.items():
            hops += [states[edge.to]["queued_at"] - states[src]["ended_at"] for edge in edges]
    figures = {
        "runs": runs,
        "failed": failed,
        "transitions": transitions,
        "transitions_per_s": transitions / elapsed,
        "hop_p50_ms": pct(hops, 0.5),
        "hop_p99_ms": pct(hops, 0.99),
        "run_p50_ms": pct(run_ms, 0.5),
        "cpu_us_per_transition": cpu.per_transition_us(transitions),
    }
    return figures, run_ids


async def hot_bytes_per_run(redis: aioredis.Redis, keys: Keys, run_ids: list[str]) -> float:
    """Mean ``MEMORY USAGE`` of an ended run's keys (state, IR, applied set, nodes, outputs, joins, events)."""
    async with redis.pipeline(transaction=False) as pipe:
        for r in run_ids:
            for key in (keys.run(r), keys.ir(r), keys.applied(r), keys.nodes(r), keys.ctx(r), keys.join(r)):
                pipe.memory_usage(key, samples=0)
            pipe.memory_usage(keys.events(r), samples=0)
        sizes = await pipe.execute()
    return sum(size or 0 for size in sizes) / len(run_ids)


async def memory_phase(scripts: Scripts, pids: dict[str, int]) -> dict[str, Any]:
    """Chains in waves until ``MEMORY_TRANSITIONS``; RSS and Redis memory half-way and at the end."""
    redis = scripts.redis
    samples: list[dict[str, Any]] = []
    done = 0
    cursors = await tenant_cursors(redis, scripts.keys)
    while done < MEMORY_TRANSITIONS:
        run_ids = await start_all(scripts, "c10", MEMORY_WAVE_RUNS)
        cursors = await wait_runs(redis, scripts.keys, run_ids, cursors)
        done += 10 * MEMORY_WAVE_RUNS
        if done >= MEMORY_TRANSITIONS or (done >= MEMORY_TRANSITIONS // 2 and not samples):
            # Let retention catch up with the last wave, as it would between bursts.
            await asyncio.sleep(HOT_RETENTION_S + 2)
            info = await redis.info("memory")
            left = [key async for key in redis.scan_iter(match=f"{scripts.keys.prefix}*", count=1000)]
            async with redis.pipeline(transaction=False) as pipe:
                for key in left:
                    pipe.memory_usage(key, samples=0)
                sizes = await pipe.execute()
            samples.append(
                {
                    "transitions": done,
                    "rss_mb": {name: round(rss_mb(pid), 1) for name, pid in pids.items() if name != "redis"},
                    # The Redis server is shared with other users: its own figure, and what this deployment holds.
                    "redis_used_mb": round(info["used_memory"] / 2**20, 1),
                    "keys_left": len(left),
                    "bytes_left": sum(size or 0 for size in sizes),
                }
            )
    return {"samples": samples}


async def run_engine(prefix: str, schema: str) -> tuple[dict[str, Any], dict[str, Any]]:
    await migrate(DATABASE_URL, schema)
    conn = await asyncpg.connect(DATABASE_URL, server_settings={"search_path": schema})
    # A tenant row makes the event archiver follow the tenant's stream, as in a deployment.
    await conn.execute("INSERT INTO tenants (id, name) VALUES ($1, $1)", TENANT)
    await conn.close()
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_WORKER_CONCURRENCY": "64",
        "AOB_HOT_RETENTION_S": str(HOT_RETENTION_S),
    }
    logs = Path(tempfile.mkdtemp(prefix="aob-bench-"))
    services = {
        "coordinator": ServiceProcess(["coordinator"], env, logs / "coordinator.log"),
        "worker": ServiceProcess(["worker", "builtin"], env, logs / "worker.log"),
    }
    redis = connect_redis(REDIS_URL)
    scripts = Scripts(redis, Keys(prefix))
    results: dict[str, Any] = {}
    try:
        for service in services.values():
            service.start()
        await asyncio.sleep(2.0)
        for stream in scripts.keys.tenant_events(TENANT):
            await redis.xadd(stream, {"e": json.dumps({"type": "bench_marker"})})
        pids = {name: s.proc.pid for name, s in services.items() if s.proc is not None}
        pids["redis"] = int((await redis.info("server"))["process_id"])
        await engine_scenario(scripts, "c3", 20, pids)  # warm-up
        hot_bytes = 0.0
        for name, _, shape, runs in SCENARIOS:
            results[name], run_ids = await engine_scenario(scripts, shape, runs, pids)
            if name == "chain":
                hot_bytes = await hot_bytes_per_run(redis, scripts.keys, run_ids)
        memory = await memory_phase(scripts, pids)
        memory["hot_bytes_per_chain_run"] = round(hot_bytes)
        memory["hot_retention_s"] = HOT_RETENTION_S
    finally:
        for service in services.values():
            service.stop()
        await _cleanup(redis, prefix)
        await redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    return results, memory


async def run_skeleton(prefix: str) -> dict[str, Any]:
    keys = skeleton.SkeletonKeys(prefix)
    redis = connect_redis(REDIS_URL)
    await redis.xgroup_create(keys.tasks, skeleton.GROUP, id="0", mkstream=True)
    logs = Path(tempfile.mkdtemp(prefix="aob-bench-skeleton-"))
    procs = {
        role: ServiceProcess(
            ["-m", "tests.bench._engine_skeleton", role, REDIS_URL, prefix], {}, logs / role, program=sys.executable
        )
        for role in ("coordinator", "worker")
    }
    for proc in procs.values():
        proc.start()
    pids = {name: p.proc.pid for name, p in procs.items() if p.proc is not None}
    pids["redis"] = int((await redis.info("server"))["process_id"])
    results: dict[str, Any] = {}
    try:
        cursor = "0-0"
        for name, _, shape, runs in [("warm-up", "", "c3", 20), *SCENARIOS]:
            await redis.delete(keys.hops)
            runs_ids = [uuid.uuid4().hex for _ in range(runs)]
            cpu = Cpu(pids)
            started = time.perf_counter()
            await skeleton.start(redis, keys, runs_ids, shape)
            pending = {keys.of("run", r) for r in runs_ids}
            while pending:
                for _, entries in await redis.xread({keys.done: cursor}, count=1000, block=1000):
                    for entry_id, fields in entries:
                        cursor = entry_id
                        pending.discard(fields["r"])
            elapsed = time.perf_counter() - started
            size = int(shape[1:])
            transitions = runs * (size if shape[0] == "c" else size + 2)
            hops = [float(h) for h in await redis.lrange(keys.hops, 0, -1)]
            results[name] = {
                "transitions": transitions,
                "transitions_per_s": transitions / elapsed,
                "hop_p50_ms": pct(hops, 0.5),
                "hop_p99_ms": pct(hops, 0.99),
                "cpu_us_per_transition": cpu.per_transition_us(transitions),
            }
    finally:
        for proc in procs.values():
            proc.stop()
        await _cleanup(redis, prefix)
        await redis.aclose()
    results.pop("warm-up")
    return results


async def _cleanup(redis: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])


async def main() -> None:
    tag = uuid.uuid4().hex[:8]
    engine, memory = await run_engine(f"bench{tag}:", f"bench_{tag}")
    skel = await run_skeleton(f"benchsk{tag}:")
    celery_rate = celery_chain(REDIS_URL, 200, f"bench{tag}:celery")
    report(SCENARIOS, engine, skel, memory, celery_rate)


if __name__ == "__main__":
    asyncio.run(main())
