"""POST /api/v1/runs latency under 50 concurrent clients: uvicorn on 127.0.0.1, the real engine in-process.

Not a test. Run with ``.venv/bin/python -m tests.bench.api_submit``; appends its figures to docs/benchmarks.md.
Needs the Redis and Postgres of tests/conftest.py (AOB_TEST_REDIS_URL / AOB_TEST_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from common.db import create_pool, migrate
from common.redis_client import connect_redis
from common.settings import EngineSettings
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.api import ADMIN_KEY, api_settings, chain_definition, served_api
from tests.support.engine import Engine

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


async def bench(clients: int, per_client: int) -> dict[str, float]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    await migrate(DATABASE_URL, schema)
    redis = connect_redis(REDIS_URL, max_connections=256)
    pool = await create_pool(DATABASE_URL, schema, max_size=20)
    base = EngineSettings(redis_url=REDIS_URL, database_url=DATABASE_URL, key_prefix=prefix, db_schema=schema)
    limits = 10**9
    settings = api_settings(
        base,
        rate_global_per_min=limits,
        rate_key_per_min=limits,
        rate_runs_no_agents_per_min=limits,
        max_active_runs_per_tenant=limits,
        log_json=False,
    )
    latencies: list[float] = []
    errors: list[int] = []
    try:
        async with Engine(settings, redis, pool=pool), served_api(settings, redis, pool) as url:
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
        await pool.close()
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
        f"`POST /api/v1/runs` (3-node noop chain) from {clients} concurrent clients; one uvicorn process on"
        " 127.0.0.1 with the coordinator, built-in worker and recorder in the same process; Redis 7 and"
        " Postgres 15 on loopback, 2 cores.\n\n"
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
