"""The fanout benchmark's figures: quantiles, a process's CPU time and RSS, and the Markdown and JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

REPORT = Path(os.environ.get("AOB_BENCH_REPORT") or Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md")
TARGET_P99_MS = 50.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def histogram_pct(text: str, name: str, q: float) -> float:
    """The ``q`` quantile of a Prometheus histogram, interpolated within its bucket."""
    buckets: list[tuple[float, float]] = []
    for line in text.splitlines():
        if line.startswith(f"{name}_bucket{{"):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float("inf") if bound == "+Inf" else float(bound), float(line.split()[-1])))
    total = buckets[-1][1] if buckets else 0.0
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= q * total:
            if le == float("inf"):
                return prev_le
            return prev_le + (le - prev_le) * (q * total - prev_count) / max(count - prev_count, 1)
        prev_le, prev_count = le, count
    return float("nan")


def gauge(text: str, name: str) -> float:
    """The value of ``name{transport="ws"}`` in a Prometheus exposition."""
    prefix = f'{name}{{transport="ws"}} '
    return next((float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix)), 0.0)


def ratios(fanout: dict[str, Any], skeleton: dict[str, Any]) -> dict[str, float]:
    """fanout/skeleton: above 1 for latencies means slower, below 1 for frames/s means fewer."""
    names = (
        "steady_client_p50_ms",
        "steady_client_p99_ms",
        "steady_cpu_us_per_frame",
        "burst_frames_per_s",
        "burst_client_p99_ms",
        "burst_cpu_us_per_frame",
        "rss_mb",
    )
    return {name: round(fanout[name] / skeleton[name], 2) if skeleton[name] else float("nan") for name in names}


def row(name: str, r: dict[str, Any]) -> str:
    measured = r["written_p50_ms"] == r["written_p50_ms"]  # NaN for the skeleton, which keeps no histogram
    written = f"{r['written_p50_ms']:.1f} / {r['written_p99_ms']:.1f}" if measured else "-"
    return (
        f"| {name} | {r['steady_frames']:,} of {r['steady_frames_expected']:,} | {written} |"
        f" {r['steady_client_p50_ms']:.1f} / {r['steady_client_p99_ms']:.1f} / {r['steady_client_max_ms']:.0f} |"
        f" {r['steady_cpu_us_per_frame']:.1f} | {r['burst_frames_per_s']:,.0f} |"
        f" {r['burst_client_p50_ms']:.0f} / {r['burst_client_p99_ms']:.0f} | {r['burst_cpu_us_per_frame']:.1f} |"
        f" {r['compressed_frames']:,} | {r['rss_start_mb']:.0f} / {r['rss_mb']:.0f} |"
    )


def report(setup: dict[str, Any], fanout: dict[str, Any], skeleton: dict[str, Any]) -> None:
    """Print the Markdown section, append it to ``REPORT``, then print the JSON line (figures and ratios)."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rel = ratios(fanout, skeleton)
    met = fanout["written_p99_ms"] <= TARGET_P99_MS and fanout["steady_frames"] == fanout["steady_frames_expected"]
    lines = [
        f"\n## Fanout — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, commit {commit or 'unknown'}\n",
        f"One `aob fanout` process, then the skeleton (one `websockets` broadcaster reading the same streams"
        f" with `XREAD`), each serving {setup['clients']:,} WebSocket clients ({setup['client_processes']} client"
        " processes of bare protocol clients offering permessage-deflate, like browsers) watching"
        f" {setup['runs']} runs; Redis 7 on loopback, 2 cores shared by server, clients and appender. Steady:"
        f" {setup['steady_events_per_s']} events/s evenly spaced for {setup['steady_s']:.0f} s ="
        f" {fanout['steady_offered_frames_per_s']:,.0f} frames/s offered. Burst: {setup['burst_per_run']} events"
        " per run appended as fast as Redis takes them, then each run's terminal event."
        f" Connecting the clients took {fanout['connect_s']:.1f} s (skeleton {skeleton['connect_s']:.1f} s).\n",
        "| server | steady frames received | append -> written p50 / p99 ms | append -> received p50 / p99 / max ms |"
        " steady CPU µs/frame | burst frames/s | burst received p50 / p99 ms | burst CPU µs/frame | frames compressed |"
        " RSS MB at start / after |",
        "|---|---|---|---|---|---|---|---|---|---|",
        row("`aob fanout`", fanout),
        row("skeleton", skeleton),
        f"\nRatios fanout/skeleton: steady received p50 {rel['steady_client_p50_ms']}x, p99"
        f" {rel['steady_client_p99_ms']}x, CPU per frame {rel['steady_cpu_us_per_frame']}x; burst frames/s"
        f" {rel['burst_frames_per_s']}x, burst p99 {rel['burst_client_p99_ms']}x, CPU per frame"
        f" {rel['burst_cpu_us_per_frame']}x; RSS {rel['rss_mb']}x. Target (append -> written p99"
        f" ≤ {TARGET_P99_MS:.0f} ms at 5,000 frames/s, nothing lost): {'met' if met else 'NOT met'}.",
        "\nAppend -> written comes from the fanout's histogram (buckets 1, 2.5, 5, 10, 25, 50 ms...; interpolated;"
        " event `ts` is whole ms). Append -> received is measured in the clients from the appender's clock in"
        " `data.t`, so it includes the clients' own scheduling on the shared cores. CPU µs/frame is the server"
        " process's user + system CPU time over the phase divided by the frames delivered: unlike latencies, it does"
        " not depend on what else the cores run.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if not REPORT.exists():
        REPORT.write_text("# Benchmarks\n\nFigures appended by the benchmark scripts in tests/bench/.\n")
    with REPORT.open("a") as f:
        f.write(text)
    figures = {"benchmark": "fanout", "commit": commit, "setup": setup, "fanout": fanout, "skeleton": skeleton}
    figures["ratios"] = rel
    # NaN (a figure the skeleton has not) is not JSON: null instead.
    print(json.dumps(_nulls(figures | {"target_met": met})))


def _nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _nulls(v) for k, v in value.items()}
    return None if isinstance(value, float) and value != value else value
