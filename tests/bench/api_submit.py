"""POST /api/v1/runs latency under 50 concurrent clients against the API and engine as separate processes.

Not a test. Run with ``.venv/bin/python -m tests.bench.api_submit``; appends its figures to docs/benchmarks.md.
Needs the Redis and Postgres of tests/conftest.py (AOB_TEST_REDIS_URL / AOB_TEST_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from common.db import migrate
from common.redis_client import connect_redis
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.api import chain_definition
from tests.support.deployment import ADMIN_KEY
from tests.support.processes import ServiceProcess

REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def client_loop(url: str, requests: int, latencies_ms: list[float], errors: list[int]) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
        for _ in range(requests):
            started = time.perf_counter()
            response = await client.post("/api/v1/runs", json={"workflow_id": "bench/chain", "inputs": {}})
            latencies_ms.append((time.perf_counter() - started) * 1000)
            if response.status_code != 201:
                errors.append(response.status_code)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"API at {url} not ready within {timeout_s}s")
            await asyncio.sleep(0.2)


async def bench(clients: int, per_client: int) -> dict[str, float]:
    """Serve the API, a coordinator and a built-in worker as separate processes, as `aob up` does."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    await migrate(DATABASE_URL, schema)
    port = free_port()
    limits = str(10**9)
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_ADMIN_KEY": ADMIN_KEY,
        "AOB_API_PORT": str(port),
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_RATE_GLOBAL_PER_MIN": limits,
        "AOB_RATE_KEY_PER_MIN": limits,
        "AOB_RATE_TENANT_PER_MIN": limits,
        "AOB_RATE_RUNS_NO_AGENTS_PER_MIN": limits,
        "AOB_MAX_ACTIVE_RUNS_PER_TENANT": limits,
    }
    logs = Path(tempfile.mkdtemp(prefix="aob-api-bench-"))
    services = [
        ServiceProcess(["orchestrator"], env, logs / "orchestrator.log"),
        ServiceProcess(["coordinator"], env, logs / "coordinator.log"),
        ServiceProcess(["worker", "builtin"], env, logs / "worker.log"),
    ]
    url = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    errors: list[int] = []
    redis = connect_redis(REDIS_URL)
    try:
        for service in services:
            service.start()
        await wait_ready(url)
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
            created = await client.post(
                "/api/v1/workflows", json={"name": "bench/chain", "definition": chain_definition(3)}
            )
            created.raise_for_status()
        await asyncio.gather(*(client_loop(url, 5, [], []) for _ in range(clients)))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(url, per_client, latencies, errors) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    finally:
        for service in services:
            service.stop()
        keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
        await redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()
    return {
        "requests": len(latencies),
        "errors": len(errors),
        "p50": pct(latencies, 0.50),
        "p99": pct(latencies, 0.99),
        "mean": statistics.fmean(latencies),
        "rps": len(latencies) / elapsed,
    }


def report(clients: int, figures: dict[str, float]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"\n## API run submission — {now}, commit {commit}\n\n"
        f"`POST /api/v1/runs` (3-node noop chain) from {clients} concurrent clients in the benchmark process;"
        " `aob orchestrator`, `aob coordinator` and `aob worker builtin` as separate processes, as `aob up` runs"
        " them; Redis 7 and Postgres 15 on loopback, 2 cores.\n\n"
        "| requests | non-201 | p50 ms | p99 ms | mean ms | requests/s |\n|---|---|---|---|---|---|\n"
        f"| {figures['requests']:.0f} | {figures['errors']:.0f} | {figures['p50']:.1f} | {figures['p99']:.1f}"
        f" | {figures['mean']:.1f} | {figures['rps']:.0f} |\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--per-client", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print the figures without appending them")
    args = parser.parse_args()
    figures = asyncio.run(bench(args.clients, args.per_client))
    text = report(args.clients, figures)
    print(text)
    if not args.no_write:
        with REPORT.open("a") as handle:
            handle.write(text)


if __name__ == "__main__":
    main()
