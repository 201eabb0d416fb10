"""POST /api/v1/runs throughput and latency at 50 connections (wrk), beside a skeleton of the same I/O.

In one run: (1) ``aob orchestrator`` (AOB_API_WORKERS processes) with no coordinator or worker, so runs only queue
and the figure is the API's own; (2) the skeleton (tests/bench/_api_skeleton.py: one Postgres insert and one Redis
script per request, served the same way) and the ratio; (3) the API again with a coordinator and a built-in worker
running the submitted runs on the same cores. Reports the API processes' RSS after (1).

Not a test. ``.venv/bin/python -m tests.bench.api_submit``; appends a Markdown section to $AOB_BENCH_REPORT (default
docs/benchmarks.md); the last line of stdout is one JSON object. Needs /usr/bin/wrk and the Redis and Postgres of
tests/conftest.py (AOB_TEST_REDIS_URL / AOB_TEST_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from common.db import migrate
from common.redis_client import connect_redis
from tests.bench._proc import children, cpu_s, rss_mb
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.api import chain_definition
from tests.support.deployment import ADMIN_KEY
from tests.support.processes import ServiceProcess

REPORT = Path(os.environ.get("AOB_BENCH_REPORT") or Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md")
WRK = "/usr/bin/wrk"
TARGET_RPS = 1000
TARGET_P99_MS = 100.0
TARGET_RATIO = 2 / 3
# wrk's request: the body and headers of one submission; the key comes from the environment.
_LUA = """
wrk.method = "POST"
wrk.body = '{"workflow_id": "bench/chain", "inputs": {"who": "wrk"}}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("AOB_BENCH_KEY")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def wait_ready(url: str, path: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient() as client:
        while True:
            try:
                if (await client.get(f"{url}{path}")).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready within {timeout_s}s")
            await asyncio.sleep(0.2)


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


def run_wrk(url: str, key: str, connections: int, duration_s: int, script: Path) -> dict[str, float]:
    """One wrk run; its requests/s, p50/p99 latency (ms), and non-2xx and socket-error counts."""
    out = subprocess.run(
        [WRK, "-t2", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "AOB_BENCH_KEY": key},
    ).stdout
    latency = {q: _ms(v, u) for q, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "p50_ms": latency["50"],
        "p99_ms": latency["99"],
        "requests": float(re.search(r"(\d+) requests in", out).group(1)),  # type: ignore[union-attr]
        "non_2xx": float(errors.group(1)) if errors else 0.0,
        "socket_errors": float(sum(int(n) for n in socket_errors.groups())) if socket_errors else 0.0,
    }


def server_pids(root_pid: int) -> list[int]:
    """The serving processes under ``root_pid``: its children (multiprocessing's helper aside), or itself alone."""
    pids = [pid for pid in children(root_pid) if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()]
    return pids or [root_pid]


def measured(url: str, key: str, connections: int, duration_s: int, script: Path, root_pid: int) -> dict[str, float]:
    """One wrk run, plus the server processes' CPU microseconds per request over it."""
    pids = server_pids(root_pid)
    before = sum(cpu_s(pid) for pid in pids)
    figures = run_wrk(url, key, connections, duration_s, script)
    used = sum(cpu_s(pid) for pid in pids) - before
    return figures | {"cpu_us_per_request": round(used * 1e6 / max(1.0, figures["requests"]), 1)}


async def _setup_api(url: str) -> str:
    """The benchmark workflow, and a (non-bootstrap) key to submit with, so the key cache is what is measured."""
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client:
        created = await client.post(
            "/api/v1/workflows", json={"name": "bench/chain", "definition": chain_definition(3)}
        )
        created.raise_for_status()
        key = await client.post("/api/v1/api-keys", json={"name": "bench", "role": "editor"})
        key.raise_for_status()
        return str(key.json()["key"])


async def bench(workers: int, connections: int, duration_s: int) -> dict[str, Any]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    prefix = f"bench{uuid.uuid4().hex[:8]}:"
    await migrate(DATABASE_URL, schema)
    limits = str(10**9)
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_ADMIN_KEY": ADMIN_KEY,
        "AOB_API_WORKERS": str(workers),
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_RATE_GLOBAL_PER_MIN": limits,
        "AOB_RATE_KEY_PER_MIN": limits,
        "AOB_RATE_TENANT_PER_MIN": limits,
        "AOB_RATE_RUNS_NO_AGENTS_PER_MIN": limits,
        "AOB_MAX_ACTIVE_RUNS_PER_TENANT": limits,
    }
    logs = Path(tempfile.mkdtemp(prefix="aob-api-bench-"))
    script = logs / "submit.lua"
    script.write_text(_LUA)
    api_port, skeleton_port = free_port(), free_port()
    api = ServiceProcess(["orchestrator"], env | {"AOB_API_PORT": str(api_port)}, logs / "orchestrator.log")
    skeleton = ServiceProcess(
        ["-m", "tests.bench._api_skeleton", "--port", str(skeleton_port), "--workers", str(workers)],
        env,
        logs / "skeleton.log",
        program=sys.executable,
    )
    engine = [
        ServiceProcess(["coordinator"], env, logs / "coordinator.log"),
        ServiceProcess(["worker", "builtin"], env, logs / "worker.log"),
    ]
    api_url, skeleton_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{skeleton_port}"
    figures: dict[str, Any] = {"workers": workers, "connections": connections, "duration_s": duration_s}
    try:
        api.start()
        await wait_ready(api_url, "/readyz")
        key = await _setup_api(api_url)
        run_wrk(f"{api_url}/api/v1/runs", key, connections, 2, script)  # warm-up: caches, pools, connections
        assert api.proc is not None
        figures["api"] = measured(f"{api_url}/api/v1/runs", key, connections, duration_s, script, api.proc.pid)
        figures["api_rss_mb"] = [rss_mb(pid) for pid in server_pids(api.proc.pid)]
        api.stop()
        skeleton.start()
        await wait_ready(skeleton_url, "/docs")
        run_wrk(f"{skeleton_url}/api/v1/runs", key, connections, 2, script)
        assert skeleton.proc is not None
        url = f"{skeleton_url}/api/v1/runs"
        figures["skeleton"] = measured(url, key, connections, duration_s, script, skeleton.proc.pid)
        skeleton.stop()
        api.start()
        for service in engine:
            service.start()
        await wait_ready(api_url, "/readyz")
        figures["api_with_engine"] = run_wrk(f"{api_url}/api/v1/runs", key, connections, duration_s, script)
    finally:
        for service in [api, skeleton, *engine]:
            service.stop()
        await _clean(prefix, schema)
    figures["ratio"] = figures["api"]["rps"] / figures["skeleton"]["rps"]
    return figures


async def _clean(prefix: str, schema: str) -> None:
    redis = connect_redis(REDIS_URL)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
    for i in range(0, len(keys), 1000):
        await redis.delete(*keys[i : i + 1000])
    await redis.aclose()
    conn = await asyncpg.connect(DATABASE_URL)
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await conn.close()


def report(figures: dict[str, Any]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    api, skeleton, engine = figures["api"], figures["skeleton"], figures["api_with_engine"]
    met = api["rps"] >= TARGET_RPS and api["p99_ms"] <= TARGET_P99_MS and figures["ratio"] >= TARGET_RATIO

    def row(name: str, f: dict[str, float]) -> str:
        cpu = f"{f['cpu_us_per_request']:,.0f}" if "cpu_us_per_request" in f else "-"
        return (
            f"| {name} | {f['rps']:.0f} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {cpu} | {f['requests']:.0f}"
            f" | {f['non_2xx']:.0f} | {f['socket_errors']:.0f} |\n"
        )

    return (
        f"\n## API run submission — {now}, commit {commit}\n\n"
        f"`POST /api/v1/runs` (3-node noop chain, a non-bootstrap key) driven by wrk, {figures['connections']}"
        f" connections, {figures['duration_s']} s per figure, on the same {os.cpu_count()} cores as everything else;"
        f" {figures['workers']} API processes (`AOB_API_WORKERS`). The skeleton is a bare FastAPI route doing one"
        " Postgres insert and one Redis script call, served the same way (uvicorn, uvloop, httptools, as many"
        " processes).\n\n"
        "| server | requests/s | p50 ms | p99 ms | server CPU µs/request | requests | non-2xx | socket errors |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + row("API (coordinator and workers stopped: runs queue)", api)
        + row("skeleton (1 insert + 1 script)", skeleton)
        + row("API with a coordinator and a built-in worker running the runs", engine)
        + f"\nAPI / skeleton: **{figures['ratio']:.2f}** (target ≥ {TARGET_RATIO:.2f}); target ≥ {TARGET_RPS}"
        f" requests/s with p99 ≤ {TARGET_P99_MS:.0f} ms: **{'met' if met else 'not met'}**."
        f" RSS of the API processes after the run: {', '.join(f'{mb:.0f} MiB' for mb in figures['api_rss_mb'])}.\n"
        "\nA submission is an API key from the cache, the body and inputs validated, the admission script (rate"
        " limits, tier, active runs), the `runs` insert and the start script (shared by submissions arriving"
        " together); the skeleton does one insert and one script. Server CPU per request is the API or skeleton"
        " processes' CPU time over the run divided by its requests.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="API and skeleton processes")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duration-s", type=int, default=12)
    parser.add_argument("--no-write", action="store_true", help="print the figures without appending them")
    args = parser.parse_args()
    figures = asyncio.run(bench(args.workers, args.connections, args.duration_s))
    text = report(figures)
    print(text)
    if not args.no_write:
        if not REPORT.exists():
            REPORT.write_text("# Benchmarks\n\nFigures appended by the benchmark scripts in tests/bench/.\n")
        with REPORT.open("a") as handle:
            handle.write(text)
    print(json.dumps({"benchmark": "api_submit", **figures}))


if __name__ == "__main__":
    main()
