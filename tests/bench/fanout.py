"""Fanout benchmark (not a test): one ``aob fanout`` process serving 1,000 WebSocket clients.

20 runs with 50 clients each. Phase 1 (steady): events appended to the runs' streams at a fixed rate, measuring
fan-out latency (event appended -> frame written, from the fanout's own histogram; and -> frame received, in the
clients). Phase 2 (burst): events appended as fast as Redis takes them, measuring frames delivered per second.
Events are appended the way the engine's scripts append them (field ``e``, JSON with ``ts`` in epoch ms), so the
figures are the fanout's alone. Appends to docs/benchmarks.md. Run: ``python -m tests.bench.fanout``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from websockets.asyncio.client import connect

from common.db import create_pool, migrate
from common.keys import Keys
from common.redis_client import connect_redis
from tests.support.processes import ServiceProcess
from tests.support.streaming import new_key

REDIS_URL = os.environ.get("AOB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("AOB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
RUNS = 20
CLIENTS = 1000
STEADY_RATE = 100  # events/s appended across all runs -> 5,000 frames/s to deliver
STEADY_S = 10.0
BURST_PER_RUN = 100


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def histogram_pct(text: str, name: str, q: float) -> float:
    """The ``q`` quantile of a Prometheus histogram, interpolated within its bucket."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            le = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), float(line.split()[-1])))
    total = buckets[-1][1]
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= q * total:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (q * total - prev_count) / max(count - prev_count, 1)
        prev_le, prev_count = le, count
    return float("nan")


class Client:
    def __init__(self) -> None:
        self.latencies_s: list[float] = []
        self.received = 0
        self.done = asyncio.Event()
        self._want = 0
        self._enough = asyncio.Event()

    async def reached(self, count: int) -> None:
        self._want = count
        if self.received < count:
            self._enough.clear()
            await self._enough.wait()

    async def watch(self, url: str, run_id: str, key: str, ready: asyncio.Event) -> None:
        async with connect(
            f"{url}/ws/runs/{run_id}", additional_headers={"Authorization": f"Bearer {key}"}, max_queue=None
        ) as ws:
            ready.set()
            async for message in ws:
                event = json.loads(message)
                self.latencies_s.append(time.time() - event["ts"] / 1000)
                self.received += 1
                if self.received >= self._want:
                    self._enough.set()
                if event["type"] == "run_succeeded":
                    break
        self.done.set()


async def append(redis: Any, keys: Keys, run_id: str, event_type: str, i: int) -> None:
    body = {"type": event_type, "run_id": run_id, "node_id": f"n{i}", "ts": int(time.time() * 1000), "data": {}}
    await redis.xadd(keys.events(run_id), {"e": json.dumps(body)})


async def main() -> None:
    schema, prefix = f"bench_{uuid.uuid4().hex[:8]}", f"bench{uuid.uuid4().hex[:8]}:"
    keys = Keys(prefix)
    await migrate(DATABASE_URL, schema)
    pool = await create_pool(DATABASE_URL, schema)
    redis = connect_redis(REDIS_URL)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "AOB_REDIS_URL": REDIS_URL,
        "AOB_DATABASE_URL": DATABASE_URL,
        "AOB_KEY_PREFIX": prefix,
        "AOB_DB_SCHEMA": schema,
        "AOB_FANOUT_PORT": str(port),
        "AOB_LOG_LEVEL": "WARNING",
        "AOB_QUEUE_SIZE": "100000",
    }
    fanout = ServiceProcess(["fanout"], env, Path(tempfile.mkdtemp()) / "fanout.log")
    fanout.start()
    results: dict[str, Any] = {}
    try:
        key = await new_key(pool, "bench")
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            results.update(await phases(redis, keys, key, f"ws://127.0.0.1:{port}", http))
    finally:
        fanout.stop()
        batch = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
        for i in range(0, len(batch), 1000):
            await redis.delete(*batch[i : i + 1000])
        await redis.aclose()
        await pool.close()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        await conn.close()
    report(results)


async def phases(redis: Any, keys: Keys, key: str, url: str, http: httpx.AsyncClient) -> dict[str, Any]:
    runs = [uuid.uuid4().hex for _ in range(RUNS)]
    for run_id in runs:
        await redis.hset(keys.run(run_id), mapping={"run_id": run_id, "tenant": "bench", "status": "running"})
    clients = [Client() for _ in range(CLIENTS)]
    readies = [asyncio.Event() for _ in clients]
    started = time.monotonic()
    tasks = [asyncio.create_task(c.watch(url, runs[i % RUNS], key, readies[i])) for i, c in enumerate(clients)]
    for ready in readies:
        await ready.wait()
    connect_s = time.monotonic() - started

    # Steady: a fixed append rate, for latency.
    interval = RUNS / STEADY_RATE
    steady_events = 0
    deadline = time.monotonic() + STEADY_S
    while time.monotonic() < deadline:
        tick = time.monotonic()
        for run_id in runs:
            await append(redis, keys, run_id, "node_succeeded", steady_events)
        steady_events += 1
        await asyncio.sleep(max(0.0, interval - (time.monotonic() - tick)))
    steady_received = CLIENTS * steady_events
    await asyncio.wait_for(asyncio.gather(*(c.reached(steady_events) for c in clients)), 60)
    steady_latency = [v for c in clients for v in c.latencies_s]
    steady_metrics = (await http.get(f"{url.replace('ws://', 'http://')}/metrics")).text

    # Burst: as fast as Redis takes appends, for throughput.
    for c in clients:
        c.latencies_s.clear()
    burst_start = time.monotonic()
    for i in range(BURST_PER_RUN):
        await asyncio.gather(*(append(redis, keys, run_id, "node_succeeded", i) for run_id in runs))
    await asyncio.gather(*(append(redis, keys, run_id, "run_succeeded", 0) for run_id in runs))
    await asyncio.gather(*(c.done.wait() for c in clients))
    burst_s = time.monotonic() - burst_start
    await asyncio.gather(*tasks)
    burst_frames = CLIENTS * (BURST_PER_RUN + 1)
    burst_latency = [v for c in clients for v in c.latencies_s]
    name = "aob_stream_fanout_latency_seconds"
    return {
        "server_p50_ms": histogram_pct(steady_metrics, name, 0.5) * 1000,
        "server_p99_ms": histogram_pct(steady_metrics, name, 0.99) * 1000,
        "connect_s": connect_s,
        "steady_frames": steady_received,
        "steady_rate": STEADY_RATE * CLIENTS / RUNS,
        "steady_client_p50_ms": pct(steady_latency, 0.5) * 1000,
        "steady_client_p99_ms": pct(steady_latency, 0.99) * 1000,
        "burst_frames": burst_frames,
        "burst_frames_per_s": burst_frames / burst_s,
        "burst_client_p50_ms": pct(burst_latency, 0.5) * 1000,
        "burst_client_p99_ms": pct(burst_latency, 0.99) * 1000,
    }


def report(r: dict[str, Any]) -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        f"\n## Fanout — {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit or 'unknown'}\n",
        f"One `aob fanout` process; {CLIENTS:,} WebSocket clients (one asyncio process, same machine) watching"
        f" {RUNS} runs; Redis 7 on loopback, 2 cores. Connecting all clients took {r['connect_s']:.1f} s.\n",
        "| phase | frames delivered | frames/s | fan-out p50 / p99 ms (append -> written) |"
        " client p50 / p99 ms (append -> received) |",
        "|---|---|---|---|---|",
        f"| steady, {STEADY_RATE} events/s appended | {r['steady_frames']:,} | {r['steady_rate']:,.0f} (offered) |"
        f" {r['server_p50_ms']:.1f} / {r['server_p99_ms']:.1f} |"
        f" {r['steady_client_p50_ms']:.1f} / {r['steady_client_p99_ms']:.1f} |",
        f"| burst, {BURST_PER_RUN} events per run at once | {r['burst_frames']:,} | {r['burst_frames_per_s']:,.0f} |"
        f" - | {r['burst_client_p50_ms']:.1f} / {r['burst_client_p99_ms']:.1f} |",
        "\nThe fanout's histogram has coarse buckets (1, 2.5, 5, 10, 25 ms...); its quantiles are interpolated."
        " Event timestamps are whole milliseconds, so latencies carry up to 1 ms of rounding.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not REPORT.exists():
        REPORT.write_text("# Benchmarks\n\nFigures appended by the benchmark scripts in tests/bench/.\n")
    with REPORT.open("a") as f:
        f.write(text)


if __name__ == "__main__":
    asyncio.run(main())
