"""``aob up``: every service under one supervisor, with embedded Redis/Postgres when no URLs are set (a
development stack; the pieces it runs come from ``devstack``)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from common.db import migrate
from common.errors import AobError
from common.logging import configure_logging
from common.redaction import Redactor
from common.secrets import KEYS_VARIABLE, Keyring
from common.settings import load_settings
from devstack.embedded import EmbeddedServers, free_port
from devstack.scale import parse_scale, scaled_children
from devstack.supervisor import ChildSpec, Supervisor, UpSettings, parse_services
from orchestrator.cli.api_commands import parse_inputs
from orchestrator.cli.client import ClientConfig
from orchestrator.cli.example import run_example


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``up``."""
    parser = subparsers.add_parser(
        "up",
        help="run every service under one supervisor, with embedded Redis/Postgres when no URLs are set",
        description="AOB_UP_SERVICES (comma-separated, e.g. 'coordinator,worker builtin') limits which services run.",
    )
    parser.add_argument("--example", type=Path, help="a workflow definition to save and run once the stack is up")
    parser.add_argument(
        "--input", action="append", default=[], metavar="KEY=VALUE", help="an input of the example run (repeatable)"
    )
    parser.add_argument(
        "--scale",
        default="",
        metavar="NAME=N,...",
        help="run several processes of services, e.g. coordinator=2,worker.builtin=2 (also orchestrator, fanout)",
    )
    parser.set_defaults(func=cmd_up)


def cmd_up(args: argparse.Namespace) -> int:
    """Run the whole stack until SIGINT/SIGTERM; exit 0 after stopping every child and embedded server."""
    settings = load_settings(UpSettings)
    configure_logging(settings.log_level, settings.log_json)
    services = parse_services(settings.up_services)
    scale = parse_scale(args.scale, services)
    example = (args.example, parse_inputs(args.input)) if args.example else None
    return asyncio.run(_up(settings, services, example, scale))


async def _up(
    settings: UpSettings,
    services: tuple[tuple[str, ...], ...],
    example: tuple[Path, dict[str, Any]] | None = None,
    scale: dict[tuple[str, ...], int] | None = None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        redis_url, database_url = settings.redis_url, settings.database_url
        key_dir: Path | None = None
        if not redis_url or not database_url:
            servers = EmbeddedServers(settings.data_dir, redis=not redis_url, postgres=not database_url)
            print(f"starting embedded servers under {servers.data_dir}", flush=True)
            await stack.enter_async_context(servers)
            key_dir = servers.data_dir
            redis_url = redis_url or servers.redis_url
            database_url = database_url or servers.database_url
        if redis_url is None or database_url is None:
            raise AobError("aob up: embedded servers started without URLs")
        applied = await migrate(database_url, settings.db_schema)
        admin_key = settings.admin_key or "aob_" + secrets.token_urlsafe(32)
        # Configured URLs may carry passwords; they are shown without them.
        print(f"redis: {Redactor.redact_patterns(redis_url)}", flush=True)
        print(f"postgres: {Redactor.redact_patterns(database_url)} (schema {settings.db_schema})", flush=True)
        print(f"migrations applied: {', '.join(applied) or 'none pending'}", flush=True)
        if settings.admin_key is None:
            print(f"admin key: {admin_key}  (generated; set AOB_ADMIN_KEY to keep one across restarts)", flush=True)
        else:
            print("admin key: from AOB_ADMIN_KEY", flush=True)
        # Children get the resolved URLs, so embedded servers are shared rather than started again per service.
        env = {**os.environ, "AOB_REDIS_URL": redis_url, "AOB_DATABASE_URL": database_url, "AOB_ADMIN_KEY": admin_key}
        if not env.get(KEYS_VARIABLE):
            env[KEYS_VARIABLE], origin = _dev_secrets_key(key_dir)
            print(f"secrets key: {origin}", flush=True)
        ports = {"AOB_API_PORT": settings.api_port, "AOB_FANOUT_PORT": settings.fanout_port}
        children = scaled_children(services, scale or {}, ports)
        _point_agents_at_api(env, settings)
        if ("worker", "agent") in services and not (env.get("AOB_LLM_API_KEY") or env.get("AOB_LLM_BASE_URL")):
            children.append(_demo_llm(env))
        supervisor = Supervisor(
            children,
            env,
            stop_timeout_s=settings.up_stop_timeout_s,
            restart_backoff_s=settings.up_restart_backoff_s,
            max_restart_backoff_s=settings.up_max_restart_backoff_s,
        )
        running = asyncio.create_task(supervisor.run())
        names = ", ".join(child.name for child in children) or "none (AOB_UP_SERVICES is empty)"
        print(f"aob up: ready; services: {names}", flush=True)
        if example is not None:
            api = ClientConfig(f"http://{settings.api_host}:{settings.api_port}", admin_key)
            example_task = asyncio.create_task(asyncio.to_thread(run_example, api, *example))
            example_task.add_done_callback(_report_example)
            print(f"aob up: API at {api.url}; press Ctrl-C to stop", flush=True)
        await stop.wait()
        print("aob up: stopping", flush=True)
        await supervisor.shutdown()
        await running
    print("aob up: stopped", flush=True)
    return 0


def _dev_secrets_key(key_dir: Path | None) -> tuple[str, str]:
    """A key for the dev stack's secrets store, and where it came from: kept beside the embedded servers' data
    (so stored secrets stay readable across restarts), or for this session only when the servers are configured."""
    if key_dir is None:
        return Keyring.generate_key(), f"generated for this session only (set {KEYS_VARIABLE} to keep one)"
    path = key_dir / "secrets.key"
    if path.exists():
        return path.read_text().strip(), f"from {path}"
    key = Keyring.generate_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(key + "\n")
    return key, f"generated, kept in {path}"


def _point_agents_at_api(env: dict[str, str], settings: UpSettings) -> None:
    """Agents post their patches to this stack's API, wherever it listens, unless ``AOB_API_URL`` is set."""
    if env.get("AOB_API_URL"):
        return
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    host = f"[{host}]" if ":" in host else host
    env["AOB_API_URL"] = f"http://{host}:{settings.api_port}"


def _demo_llm(env: dict[str, str]) -> ChildSpec:
    """Without a provider, agents talk to the scripted demo LLM (an offline stand-in, never used otherwise)."""
    port = free_port()
    env["AOB_LLM_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    env["AOB_LLM_API_KEY"] = "aob-demo-llm-key"
    print(f"agents: no AOB_LLM_API_KEY or AOB_LLM_BASE_URL set: using the scripted demo LLM on port {port}", flush=True)
    return ChildSpec("demo llm", (sys.executable, "-m", "devstack.llm_scripted", "--port", str(port)))


def _report_example(task: asyncio.Task[int]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        print(f"example: {exc}", flush=True)
