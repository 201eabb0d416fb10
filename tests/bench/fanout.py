"""Fanout benchmark (not a test): one ``aob fanout`` process serving 1,000 WebSocket clients, and its skeleton.

20 runs with 50 clients each; the clients run in two processes of their own (``fanout_clients.py``: bare protocol
clients that offer ``permessage-deflate`` like a browser), so the harness is not the bottleneck. Phase 1 (steady):
100 events/s appended, evenly spaced across the runs, so 5,000 frames/s are offered; measured: append -> written
(the fanout's own histogram) and append -> received (in the clients, sub-millisecond: the appender puts its clock in
``data.t``). Phase 2 (burst): 100 events per run appended as fast as Redis takes them, then each run's terminal
event; measured: frames delivered per second, until the last client has its last frame. Events are appended the
way the engine's scripts append them (field ``e``, JSON with ``ts`` in epoch ms), so the figures are the fanout's.

The same clients and appends then run against the skeleton (``fanout_skeleton.py``: one ``websockets`` broadcaster
reading the same kind of streams with ``XREAD``), and the ratios fanout/skeleton are printed. Targets are run one
after the other, never at once. With ``AOB_BENCH_PYSPY=<dir>`` the fanout is profiled with py-spy in both phases.
Appends a Markdown section to ``$AOB_BENCH_REPORT`` (default docs/benchmarks.md); the last stdout line is JSON.
Run: ``python -m tests.bench.fanout`` (``AOB_BENCH_FANOUT_STEADY_S`` shortens the steady phase).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from redis.asyncio import Redis

from common.db import create_pool, migrate
from common.keys import Keys
from common.redis_client import connect_redis
from tests.bench._proc import cpu_s, rss_mb
from tests.bench.fanout_report import gauge, histogram_pct, pct, report
from tests.support.processes import ServiceProcess
from tests.support.streaming import new_key

REDIS_URL = os.environ.get("AOB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("AOB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PYSPY_DIR = os.environ.get("AOB_BENCH_PYSPY")
RUNS = 20
CLIENTS = 1000
CLIENT_PROCESSES = 2
STEADY_EVENTS_PER_S = 100  # across all runs: 100 x 50 clients per run = 5,000 frames/s offered
STEADY_S = float(os.environ.get("AOB_BENCH_FANOUT_STEADY_S", "10"))
BURST_PER_RUN = 100
LATENCY_BUCKETS = "aob_stream_fanout_latency_seconds"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def body(run_id: str, event_type: str, i: int, phase: str) -> str:
    now = time.time()
    event = {"v": 1, "type": event_type, "run_id": run_id, "node_id": f"n{i}", "ts": int(now * 1000)}
    return json.dumps(event | {"data": {"phase": phase, "t": now}})


class Clients:
    """The client processes of one target: started, connected, then asked for their summaries."""

    def __init__(self, port: int, paths: list[str], headers: dict[str, str]) -> None:
        self.port, self.paths, self.headers = port, paths, headers
        self.procs: list[asyncio.subprocess.Process] = []

    async def connect(self) -> float:
        started = time.monotonic()
        for n in range(CLIENT_PROCESSES):
            config = {
                "host": "127.0.0.1",
                "port": self.port,
                "paths": self.paths[n::CLIENT_PROCESSES],
                "headers": self.headers,
                "timeout_s": 120 + STEADY_S,
            }
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "tests.bench.fanout_clients",
                    json.dumps(config),
                    stdout=subprocess.PIPE,
                    limit=1 << 28,  # the summary is one long line
                )
            )
        for proc in self.procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 120)
            if line.strip() != b"ready":
                raise RuntimeError(f"client process did not connect: {line!r}")
        return time.monotonic() - started

    async def summaries(self) -> list[dict[str, Any]]:
        out = []
        for proc in self.procs:
            assert proc.stdout is not None
            out.append(json.loads(await proc.stdout.readline()))
            await proc.wait()
        return out


@asynccontextmanager
async def pyspy(pid: int, name: str, seconds: float) -> AsyncIterator[None]:
    """Profile ``pid`` with py-spy for ``seconds`` (when ``AOB_BENCH_PYSPY`` names a directory)."""
    proc = None
    if PYSPY_DIR and shutil.which("py-spy"):
        out = Path(PYSPY_DIR) / f"{name}.txt"
        argv = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds)), "--format", "raw"]
        proc = await asyncio.create_subprocess_exec(
            *argv, "--nonblocking", "-o", str(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    try:
        yield
    finally:
        if proc is not None:
            await proc.wait()


async def drive(
    label: str,
    redis: Redis,
    stream: Callable[[str], str],
    runs: list[str],
    clients: Clients,
    pid: int,
    metrics_url: str,
) -> dict[str, Any]:
    """Steady phase, then burst phase, against connected ``clients``; returns the figures."""
    count = int(STEADY_EVENTS_PER_S * STEADY_S)
    await asyncio.sleep(1.0)  # let the connection storm settle on both targets alike
    cpu_start = cpu_s(pid)
    async with pyspy(pid, f"{label}-steady", STEADY_S):
        start = time.monotonic()
        for i in range(count):
            # Evenly spaced: event i is due at start + i / rate, whatever the previous append cost.
            await asyncio.sleep(max(0.0, start + i / STEADY_EVENTS_PER_S - time.monotonic()))
            run_id = runs[i % RUNS]
            await redis.xadd(stream(run_id), {"e": body(run_id, "node_succeeded", i, "steady")})
    await asyncio.sleep(2.0)
    cpu_steady = cpu_s(pid) - cpu_start
    server_metrics = await http_text(metrics_url) if metrics_url else ""
    cpu_start = cpu_s(pid)
    async with pyspy(pid, f"{label}-burst", 3):
        burst_start = time.time()
        for i in range(BURST_PER_RUN):
            async with redis.pipeline(transaction=False) as pipe:
                for run_id in runs:
                    pipe.xadd(stream(run_id), {"e": body(run_id, "node_succeeded", i, "burst")})
                await pipe.execute()
        async with redis.pipeline(transaction=False) as pipe:
            for run_id in runs:
                pipe.xadd(stream(run_id), {"e": body(run_id, "run_succeeded", BURST_PER_RUN, "end")})
            await pipe.execute()
        summaries = await clients.summaries()
    cpu_burst = cpu_s(pid) - cpu_start
    rss = rss_mb(pid)  # the clients have gone: what the process keeps after serving them
    steady = [v for s in summaries for v in s["latencies_ms"].get("steady", [])]
    burst = [v for s in summaries for v in s["latencies_ms"].get("burst", [])]
    burst_frames = sum(s["frames"].get("burst", 0) + s["frames"].get("end", 0) for s in summaries)
    burst_s = max(s["last_received"] for s in summaries) - burst_start
    return {
        "steady_offered_frames_per_s": STEADY_EVENTS_PER_S * CLIENTS / RUNS,
        "steady_frames": len(steady),
        "steady_frames_expected": count * CLIENTS // RUNS,
        "steady_client_p50_ms": pct(steady, 0.5),
        "steady_client_p99_ms": pct(steady, 0.99),
        "steady_client_max_ms": max(steady, default=float("nan")),
        "written_p50_ms": histogram_pct(server_metrics, LATENCY_BUCKETS, 0.5) * 1000,
        "written_p99_ms": histogram_pct(server_metrics, LATENCY_BUCKETS, 0.99) * 1000,
        "steady_cpu_us_per_frame": cpu_steady / (count * CLIENTS // RUNS) * 1e6,
        "burst_cpu_us_per_frame": cpu_burst / burst_frames * 1e6,
        "burst_frames": burst_frames,
        "burst_frames_per_s": burst_frames / burst_s,
        "burst_client_p50_ms": pct(burst, 0.5),
        "burst_client_p99_ms": pct(burst, 0.99),
        "unfinished_clients": sum(s["unfinished"] for s in summaries),
        "compressed_frames": sum(s["compressed"] for s in summaries),
        "rss_mb": rss,
    }


async def http_text(url: str) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(url)).text


async def wait_listening(port: int, proc: ServiceProcess) -> None:
    for _ in range(300):
        if proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.log_tail()}")
        try:
            async with httpx.AsyncClient() as http:
                if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code in (200, 400, 426):
                    return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError(f"server not listening on {port}: {proc.log_tail()}")


async def bench_fanout(redis: Redis, keys: Keys, key: str, schema: str, logs: Path) -> dict[str, Any]:
    runs = [uuid.uuid4().hex for _ in range(RUNS)]
    for run_id in runs:
        await redis.hset(keys.run(run_id), mapping={"run_id": run_id, "tenant": "bench", "status": "running"})
    port = free_port()
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": keys.prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_FANOUT_PORT": str(port),
        "AOB_LOG_LEVEL": "WARNING",
    }
    server = ServiceProcess(["fanout"], env, logs / "fanout.log")
    server.start()
    try:
        await wait_listening(port, server)
        assert server.proc is not None
        rss_start = rss_mb(server.proc.pid)
        paths = [f"/ws/runs/{runs[i % RUNS]}" for i in range(CLIENTS)]
        clients = Clients(port, paths, {"Authorization": f"Bearer {key}"})
        started = time.monotonic()
        await clients.connect()
        # Handshakes are accepted before the key is checked: wait until every client is past auth and subscribed.
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        for _ in range(1200):
            if gauge(await http_text(metrics_url), "aob_stream_clients") >= CLIENTS:
                break
            await asyncio.sleep(0.1)
        connect_s = time.monotonic() - started
        figures = await drive("fanout", redis, keys.events, runs, clients, server.proc.pid, metrics_url)
        return figures | {"connect_s": connect_s, "rss_start_mb": rss_start}
    finally:
        server.stop()


async def bench_skeleton(redis: Redis, keys: Keys, logs: Path) -> dict[str, Any]:
    runs = [uuid.uuid4().hex for _ in range(RUNS)]
    port = free_port()
    streams = {keys.events(run_id): run_id for run_id in runs}
    config = {"redis_url": REDIS_URL, "host": "127.0.0.1", "port": port, "streams": streams}
    server = ServiceProcess(
        ["-m", "tests.bench.fanout_skeleton", json.dumps(config)], {}, logs / "skeleton.log", program=sys.executable
    )
    server.start()
    try:
        await wait_listening(port, server)
        assert server.proc is not None
        rss_start = rss_mb(server.proc.pid)
        clients = Clients(port, [f"/ws/runs/{runs[i % RUNS]}" for i in range(CLIENTS)], {})
        connect_s = await clients.connect()
        figures = await drive("skeleton", redis, keys.events, runs, clients, server.proc.pid, "")
        return figures | {"connect_s": connect_s, "rss_start_mb": rss_start}
    finally:
        server.stop()


async def main() -> None:
    schema, prefix = f"bench_{uuid.uuid4().hex[:8]}", f"bench{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix)
    await migrate(DATABASE_URL, schema)
    pool = await create_pool(DATABASE_URL, schema)
    redis = connect_redis(REDIS_URL)
    logs = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    try:
        key = await new_key(pool, "bench")
        fanout = await bench_fanout(redis, keys, key, schema, logs)
        skeleton = await bench_skeleton(redis, keys, logs)
    finally:
        batch = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(batch), 1000):
            await redis.delete(*batch[i : i + 1000])
        await redis.aclose()
        await pool.close()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    setup = {
        "runs": RUNS,
        "clients": CLIENTS,
        "client_processes": CLIENT_PROCESSES,
        "steady_events_per_s": STEADY_EVENTS_PER_S,
        "steady_s": STEADY_S,
        "burst_per_run": BURST_PER_RUN,
    }
    report(setup, fanout, skeleton)


if __name__ == "__main__":
    if PYSPY_DIR:
        Path(PYSPY_DIR).mkdir(parents=True, exist_ok=True)
    asyncio.run(main())
