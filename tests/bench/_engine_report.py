"""The engine benchmark's Celery baseline and its report: a Markdown section, then one JSON line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DEFAULT_REPORT = Path(__file__).resolve().parents[2] / "docs" / "benchmarks.md"
TARGETS = {"chain": 6000.0, "burst": 4000.0}
TARGET_HOP_P50_MS = 1.0
TARGET_CELERY_RATIO = 20.0


def celery_chain(redis_url: str, tasks: int, queue: str) -> float | None:
    """Tasks/s of a Celery chain of ``tasks`` no-ops (prefork, concurrency 2); ``None`` if Celery is absent."""
    try:
        import celery  # noqa: F401
    except ImportError:
        print("celery not installed (pip install 'celery[redis]'): no baseline")
        return None
    env = {**os.environ, "BENCH_CELERY_BROKER": redis_url.rsplit("/", 1)[0] + "/15"}
    argv = ["-A", "tests.bench._celery_app", "worker", "-c", "2", "-P", "prefork", "--without-gossip"]
    argv += ["--without-mingle", "--without-heartbeat", "-Q", queue, "-l", "WARNING"]
    worker = subprocess.Popen([sys.executable, "-m", "celery", *argv], env=env, stdout=subprocess.DEVNULL)
    try:
        os.environ["BENCH_CELERY_BROKER"] = env["BENCH_CELERY_BROKER"]
        from celery import chain as celery_chain_of

        from tests.bench._celery_app import noop

        noop.s().set(queue=queue).apply_async().get(timeout=60)
        started = time.perf_counter()
        result = celery_chain_of(*(noop.s().set(queue=queue) for _ in range(tasks))).apply_async()
        result.get(timeout=300)
        return tasks / (time.perf_counter() - started)
    finally:
        worker.terminate()
        worker.wait(30)


def _cpu(figures: dict[str, Any]) -> str:
    cpu = figures["cpu_us_per_transition"]
    return " / ".join(f"{cpu[name]:.0f}" for name in ("coordinator", "worker", "redis"))


def report(
    scenarios: list[tuple[str, str, str, int]],
    engine: dict[str, Any],
    skeleton: dict[str, Any],
    memory: dict[str, Any],
    celery_rate: float | None,
) -> None:
    """Print the Markdown section, append it to ``$AOB_BENCH_REPORT``, and print the JSON line last."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    ratios = {name: engine[name]["transitions_per_s"] / skeleton[name]["transitions_per_s"] for name in engine}
    lines = [
        f"\n## Engine — {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit or 'unknown'}\n",
        "One coordinator and one built-in worker process (concurrency 64), Redis 7 on loopback, 2 cores shared with"
        " the load generator. A hop is a worker's completion to the next token queued. The skeleton does the bare"
        " Redis work of a transition in its own worker and coordinator processes (tests/bench/_engine_skeleton.py)."
        " CPU is microseconds per transition of the coordinator / worker / Redis server processes.\n",
        "| scenario | failed | engine transitions/s | skeleton transitions/s | engine/skeleton | hop p50 / p99 ms"
        " (skeleton p50) | run p50 ms | CPU µs engine | CPU µs skeleton |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, title, _, _ in scenarios:
        e, s = engine[name], skeleton[name]
        lines.append(
            f"| {title} | {e['failed']} | {e['transitions_per_s']:,.0f} | {s['transitions_per_s']:,.0f} |"
            f" {ratios[name]:.0%} | {e['hop_p50_ms']:.2f} / {e['hop_p99_ms']:.2f} ({s['hop_p50_ms']:.2f}) |"
            f" {e['run_p50_ms']:.1f} | {_cpu(e)} | {_cpu(s)} |"
        )
    celery_ratio = engine["chain"]["transitions_per_s"] / celery_rate if celery_rate else None
    if celery_rate:
        lines.append(
            f"\nCelery 5 chain of 200 no-op tasks on the same Redis (prefork, concurrency 2): {celery_rate:,.0f}"
            f" tasks/s; the engine's 10-node chains ran {celery_ratio:.1f}x that rate,"
            f" its single-node burst {engine['burst']['transitions_per_s'] / celery_rate:.1f}x."
        )
    samples = memory["samples"]
    lines.append(
        f"\nMemory: a finished 10-node chain holds {memory['hot_bytes_per_chain_run']:,} bytes of Redis (MEMORY"
        f" USAGE of its keys) until hot retention ({memory['hot_retention_s']} s here, a day by default) expires"
        " them. After waves of 10-node chains:\n"
    )
    lines += ["| transitions | coordinator RSS MB | worker RSS MB | keys left (bytes) | Redis used MB (whole server) |"]
    lines.append("|---|---|---|---|---|")
    for sample in samples:
        rss = sample["rss_mb"]
        lines.append(
            f"| {sample['transitions']:,} | {rss['coordinator']} | {rss['worker']} | {sample['keys_left']:,}"
            f" ({sample['bytes_left']:,}) | {sample['redis_used_mb']} |"
        )
    met = [
        f"chain {engine['chain']['transitions_per_s']:,.0f}/s (target {TARGETS['chain']:,.0f}):"
        f" {'met' if engine['chain']['transitions_per_s'] >= TARGETS['chain'] else 'not met'}",
        f"burst {engine['burst']['transitions_per_s']:,.0f}/s (target {TARGETS['burst']:,.0f}):"
        f" {'met' if engine['burst']['transitions_per_s'] >= TARGETS['burst'] else 'not met'}",
        f"unqueued hop p50 {engine['hop']['hop_p50_ms']:.2f} ms (target {TARGET_HOP_P50_MS} ms):"
        f" {'met' if engine['hop']['hop_p50_ms'] <= TARGET_HOP_P50_MS else 'not met'}",
    ]
    if celery_rate:
        burst_ratio = engine["burst"]["transitions_per_s"] / celery_rate
        met.append(
            f"burst {burst_ratio:.1f}x Celery (target {TARGET_CELERY_RATIO:.0f}x):"
            f" {'met' if burst_ratio >= TARGET_CELERY_RATIO else 'not met'}"
        )
    lines.append("\nTargets: " + "; ".join(met) + ".")
    text = "\n".join(lines) + "\n"
    print(text)
    path = Path(os.environ.get("AOB_BENCH_REPORT", DEFAULT_REPORT))
    if not path.exists():
        path.write_text("# Benchmarks\n\nFigures appended by the benchmark scripts in tests/bench/.\n")
    with path.open("a") as f:
        f.write(text)
    figures = {
        "benchmark": "engine",
        "commit": commit,
        "engine": engine,
        "skeleton": skeleton,
        "engine_to_skeleton": {name: round(ratio, 3) for name, ratio in ratios.items()},
        "celery_tasks_per_s": celery_rate,
        "engine_to_celery": round(celery_ratio, 2) if celery_ratio is not None else None,
        "memory": memory,
    }
    print(json.dumps(_finite(figures)))


def _finite(value: Any) -> Any:
    """``value`` with NaN (a scenario without hops) as null, so the line is strict JSON."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
