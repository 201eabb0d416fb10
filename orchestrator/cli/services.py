"""Service commands: ``aob migrate``, ``aob recover`` and one command per service process."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import uvloop

from common.clients import open_clients
from common.db import migrate
from common.errors import AobError, ConfigError
from common.keys import Keys
from common.logging import configure_logging
from common.runs.cas import Cas
from common.runs.reconcile import ReconcileReport, reconcile
from common.runs.scripts import Scripts
from common.settings import (
    ApiSettings,
    CommonSettings,
    CoordinatorSettings,
    FanoutSettings,
    WorkerSettings,
    load_settings,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``migrate``, ``recover``, ``orchestrator``, ``coordinator``, ``worker`` and ``fanout``."""
    parser = subparsers.add_parser("migrate", help="apply pending database migrations (AOB_DATABASE_URL)")
    parser.set_defaults(func=cmd_migrate)
    parser = subparsers.add_parser(
        "recover",
        help="rebuild live runs Redis lost from Postgres, start stranded runs, settle half-done patches (what every"
        " coordinator does every AOB_RECONCILE_INTERVAL_S)",
    )
    parser.add_argument(
        "--older-than-s",
        type=float,
        help="start stranded runs and settle patch intents this old (default: AOB_RECONCILE_INTERVAL_S)",
    )
    parser.set_defaults(func=cmd_recover)
    parser = subparsers.add_parser("orchestrator", help="run the REST API, SSE streams and UI")
    parser.set_defaults(func=cmd_orchestrator)
    parser = subparsers.add_parser("coordinator", help="run a coordinator (completion signals, timers, recorder)")
    parser.set_defaults(func=cmd_coordinator)
    parser = subparsers.add_parser("worker", help="run a worker for one node type")
    parser.add_argument("node_type", help="node type to serve, e.g. builtin, http, hitl, agent")
    parser.set_defaults(func=cmd_worker)
    parser = subparsers.add_parser("fanout", help="run the WebSocket fanout")
    parser.set_defaults(func=cmd_fanout)


def _configure_logging(settings: CommonSettings) -> None:
    configure_logging(settings.log_level, settings.log_json)


def _require(value: str | None, variable: str, command: str) -> str:
    if not value:
        raise ConfigError(
            f"{variable}: required by `aob {command}` (got nothing; only `aob up` starts embedded servers)"
        )
    return value


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations to AOB_DB_SCHEMA and print their names."""
    settings = load_settings(CommonSettings)
    _configure_logging(settings)
    url = _require(settings.database_url, "AOB_DATABASE_URL", "migrate")
    applied = asyncio.run(migrate(url, settings.db_schema))
    for name in applied:
        print(f"applied {name}")
    if not applied:
        print(f"no pending migrations (schema {settings.db_schema} is up to date)")
    return 0


def cmd_recover(args: argparse.Namespace) -> int:
    """Reconcile Redis with Postgres once and print what was done per run; 1 when a run cannot be rebuilt."""
    settings = load_settings(CoordinatorSettings)
    _require(settings.redis_url, "AOB_REDIS_URL", "recover")
    _require(settings.database_url, "AOB_DATABASE_URL", "recover")
    _configure_logging(settings)
    older_than_s = settings.reconcile_interval_s if args.older_than_s is None else args.older_than_s
    report = asyncio.run(_recover(settings, older_than_s))
    for line in report_lines(report):
        print(line)
    return 1 if any(outcome.result == "unrecoverable" for outcome in report.rebuilt) else 0


async def _recover(settings: CoordinatorSettings, older_than_s: float) -> ReconcileReport:
    async with AsyncExitStack() as stack:
        redis, pool = await open_clients(stack, settings, "recover")
        keys = Keys(settings.key_prefix, settings.shards)
        cas = Cas(redis, keys, pool)
        return await reconcile(
            Scripts(redis, keys), pool, cas, max_agents=settings.max_agents, older_than_s=older_than_s
        )


def report_lines(report: ReconcileReport) -> list[str]:
    """One line per run ``aob recover`` acted on (or looked at and left), then the totals."""
    lines = []
    for outcome in report.rebuilt:
        run = f"run {outcome.run_id}"
        if outcome.result == "rebuilt":
            lines.append(
                f"rebuilt {run} ({outcome.status}): queued {', '.join(outcome.queued) or 'nothing'}"
                + (f"; waiting for approval: {', '.join(outcome.waiting)}" if outcome.waiting else "")
            )
        elif outcome.result == "exists":
            lines.append(f"{run}: left alone, Redis holds it again (another coordinator rebuilt it)")
        elif outcome.result == "unrecoverable":
            lines.append(f"{run}: cannot be rebuilt: {outcome.detail}")
        else:
            lines.append(f"{run}: left alone, Postgres holds it as {outcome.status or 'unknown'}")
    lines += [f"cancelled run {run_id}: its parent run had ended" for run_id in report.cancelled]
    lines += [f"started run {run_id}: recorded but never started" for run_id in report.started]
    if report.settled:
        lines.append(f"settled {report.settled} half-done patch(es)")
    return lines or ["nothing to recover: Redis holds every live run Postgres records"]


def _entry_point(module: str, function: str, command: str) -> Callable[..., Awaitable[None]]:
    """Import ``module.function`` now, so a missing service fails only its own command, clearly."""
    try:
        entry: Callable[..., Awaitable[None]] = getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as exc:
        raise AobError(
            f"aob {command}: expected an async {module}.{function}(...), but it is not available: {exc}"
        ) from exc
    return entry


async def _run_until_signalled(service: Awaitable[None]) -> int:
    """Run ``service``; SIGINT/SIGTERM cancel it (a service that installs its own handlers replaces these)."""
    task = asyncio.ensure_future(service)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
    return 0


def _run_service(
    command: str,
    module: str,
    function: str,
    settings: CommonSettings,
    *args: Any,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
) -> int:
    """Run ``module.function(*args, settings)``: ``settings`` is the one object the process reads its settings from."""
    _require(settings.redis_url, "AOB_REDIS_URL", command)
    _require(settings.database_url, "AOB_DATABASE_URL", command)
    entry = _entry_point(module, function, command)
    _configure_logging(settings)
    # Called before any event loop exists: the API forks its worker processes there.
    service = entry(*args, settings)
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_run_until_signalled(service))


def cmd_orchestrator(args: argparse.Namespace) -> int:
    """Run ``orchestrator.run_api(settings)`` on uvloop (what its uvicorn workers run on too)."""
    settings = load_settings(ApiSettings)
    return _run_service("orchestrator", "orchestrator", "run_api", settings, loop_factory=uvloop.new_event_loop)


def cmd_coordinator(args: argparse.Namespace) -> int:
    """Run ``coordinator.run_coordinator(settings)`` on uvloop."""
    settings = load_settings(CoordinatorSettings)
    return _run_service("coordinator", "coordinator", "run_coordinator", settings, loop_factory=uvloop.new_event_loop)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run ``workers.run_worker(node_type, settings)`` on uvloop."""
    node_type: str = args.node_type
    settings = load_settings(WorkerSettings)
    return _run_service(
        f"worker {node_type}", "workers", "run_worker", settings, node_type, loop_factory=uvloop.new_event_loop
    )


def cmd_fanout(args: argparse.Namespace) -> int:
    """Run ``fanout.run_fanout(settings)`` on uvloop (bursts cost it less CPU per frame than the default loop)."""
    settings = load_settings(FanoutSettings)
    return _run_service("fanout", "fanout", "run_fanout", settings, loop_factory=uvloop.new_event_loop)
