"""Cluster benchmark (not a test): the engine on a local Redis Cluster (three primaries, three replicas) with 1, 2
and 3 coordinator processes and two built-in worker processes, and on the single local Redis with one coordinator
for comparison.

Each configuration runs 1,000 runs of a 10-node noop chain started at once and reports transitions/s (every node
is one transition) and how the shards were shared. Prints a Markdown section (appended to ``$AOB_BENCH_REPORT``,
default docs/benchmarks.md) and, last, one JSON line. Run: ``python -m tests.bench.cluster``.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
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
from tests.support.processes import ServiceProcess
from tests.support.redis_cluster import LocalRedisCluster

REDIS_URL = os.environ.get("AOB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("AOB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
RUNS, CHAIN = 1000, 10
WORKERS = 2
TENANT = "bench"
REPORT = Path(os.environ.get("AOB_BENCH_REPORT", "docs/benchmarks.md"))


def chain() -> dict[str, Any]:
    nodes = [{"id": f"n{i}", "type": "noop"} for i in range(CHAIN)]
    return {"name": "chain", "nodes": nodes, "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(CHAIN - 1)]}


async def measure(redis_url: str, coordinators: int) -> dict[str, Any]:
    """Start the services on ``redis_url``, wait until every shard is leased, run the chains; returns the figures."""
    tag = uuid.uuid4().hex[:8]
    prefix, schema = f"benchcl{tag}:", f"benchcl_{tag}"
    await migrate(DATABASE_URL, schema)
    env = {
        "AOB_REDIS_URL": redis_url,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_WORKER_CONCURRENCY": "64",
        "AOB_COORDINATOR_HEARTBEAT_S": "0.5",
    }
    logs = Path(tempfile.mkdtemp(prefix="aob-bench-cluster-"))
    services = [ServiceProcess(["coordinator"], env, logs / f"coordinator-{i}.log") for i in range(coordinators)]
    services += [ServiceProcess(["worker", "builtin"], env, logs / f"worker-{i}.log") for i in range(WORKERS)]
    redis = connect_redis(redis_url)
    keys = Keys(prefix)
    try:
        for service in services:
            service.start()
        owners = await _leases_settled(redis, keys, coordinators)
        ir = compile_definition(chain()).ir
        run_ids = [uuid.uuid4().hex for _ in range(RUNS)]
        started = time.perf_counter()
        await start_runs(
            Scripts(redis, keys), [(RunStart(r, TENANT, "wf", "chain", 1, {}), ir) for r in run_ids], max_agents=5
        )
        failed = await _wait_ended(redis, keys, run_ids)
        elapsed = time.perf_counter() - started
    finally:
        for service in services:
            service.stop()
        doomed = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(doomed), 500):
            await redis.delete(*doomed[i : i + 500])
        await redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    return {
        "coordinators": coordinators,
        "workers": WORKERS,
        "transitions": RUNS * CHAIN,
        "failed_runs": failed,
        "seconds": round(elapsed, 2),
        "transitions_per_s": round(RUNS * CHAIN / elapsed),
        "shards_per_coordinator": sorted(owners.values()),
    }


async def _leases_settled(redis: Any, keys: Keys, coordinators: int) -> dict[str, int]:
    """Wait until every shard is leased and shared by all ``coordinators``; returns shards per coordinator."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        owners = [await redis.get(shard.lease) for shard in keys.all_shards()]
        counts = {owner: owners.count(owner) for owner in set(owners) if owner is not None}
        share = -(-keys.shards // coordinators)
        if None not in owners and len(counts) == coordinators and max(counts.values()) <= share:
            return counts
        await asyncio.sleep(0.2)
    raise RuntimeError(f"shards were not shared by {coordinators} coordinators within 60 s")


async def _wait_ended(redis: Any, keys: Keys, run_ids: list[str]) -> int:
    pending = list(run_ids)
    failed = 0
    while pending:
        # One pipeline (split by node on a cluster): a cluster client's pools do not wait for a free connection.
        async with redis.pipeline(transaction=False) as pipe:
            for r in pending:
                pipe.hget(keys.run(r), "status")
            statuses = await pipe.execute()
        done = [(r, s) for r, s in zip(pending, statuses, strict=True) if s in ("succeeded", "failed", "cancelled")]
        failed += sum(s != "succeeded" for _, s in done)
        finished = {r for r, _ in done}
        pending = [r for r in pending if r not in finished]
        if pending:
            await asyncio.sleep(0.05)
    return failed


def report(single: dict[str, Any], clustered: list[dict[str, Any]]) -> str:
    lines = [
        "",
        f"## Redis Cluster: transitions/s per number of coordinators ({time.strftime('%Y-%m-%d')})",
        "",
        f"`python -m tests.bench.cluster` on {platform.node() or 'this machine'} ({os.cpu_count()} cores, shared):"
        f" {RUNS} runs x {CHAIN}-node noop chain started at once, {WORKERS} built-in worker processes, 16 shards."
        " The cluster is three primaries and three replicas from the local `redis-server`, on the same cores;"
        f" load average {os.getloadavg()[0]:.1f} when it ended (other work on the machine makes the figures noisy).",
        "",
        "| Redis | coordinators | shards each | transitions/s | failed runs |",
        "|---|---|---|---|---|",
    ]
    for name, row in [("single", single), *(("cluster 3+3", row) for row in clustered)]:
        shards = "/".join(str(n) for n in row["shards_per_coordinator"])
        lines.append(
            f"| {name} | {row['coordinators']} | {shards} | {row['transitions_per_s']:,} | {row['failed_runs']} |"
        )
    return "\n".join(lines) + "\n"


def _append(section: str) -> None:
    with REPORT.open("a") as out:
        out.write(section)


async def main() -> None:
    single = await measure(REDIS_URL, 1)
    cluster = await asyncio.to_thread(LocalRedisCluster().start)
    try:
        clustered = [await measure(cluster.url, n) for n in (1, 2, 3)]
    finally:
        await asyncio.to_thread(cluster.stop)
    section = report(single, clustered)
    print(section)
    await asyncio.to_thread(_append, section)
    print(json.dumps({"single": single, "cluster": clustered}))


if __name__ == "__main__":
    asyncio.run(main())
