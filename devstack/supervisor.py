"""The ``aob up`` supervisor: runs each service as a child process, restarts the ones that die, stops them all."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field

from common.errors import ConfigError
from common.settings import AdminKey, ApiHost, ApiPort, CommonSettings, FanoutPort

logger = logging.getLogger(__name__)

# Every service ``aob up`` runs, as ``aob`` subcommand arguments: one coordinator, one worker per node type
# (``builtin`` serves noop, transform, delay and branch), the API and the WebSocket fanout.
SERVICES: tuple[tuple[str, ...], ...] = (
    ("coordinator",),
    ("worker", "builtin"),
    ("worker", "http"),
    ("worker", "hitl"),
    ("worker", "agent"),
    ("worker", "control"),
    ("orchestrator",),
    ("fanout",),
)
_SERVICE_ARITY = {"coordinator": 1, "worker": 2, "orchestrator": 1, "fanout": 1}
# The child runs the same ``aob`` entry point as the console script, without relying on it being on PATH.
_CHILD_MAIN = "import sys; from orchestrator.cli import main; sys.exit(main())"


class UpSettings(CommonSettings):
    """``aob up``: where embedded servers keep their data, which services to run, how to restart and stop them."""

    data_dir: Path = Field(default=Path("./.aob"), description="embedded servers' data and logs")
    # The supervisor hands the admin key to its children and calls the API for ``--example``.
    admin_key: AdminKey
    api_host: ApiHost
    api_port: ApiPort
    fanout_port: FanoutPort
    up_services: str | None = Field(
        default=None,
        description="comma-separated services to run, e.g. 'coordinator,worker builtin'; unset runs all, empty none",
    )
    up_stop_timeout_s: float = Field(default=20.0, gt=0, description="wait this long after SIGTERM before SIGKILL")
    up_restart_backoff_s: float = Field(default=0.5, gt=0)
    up_max_restart_backoff_s: float = Field(default=30.0, gt=0)


def parse_services(value: str | None) -> tuple[tuple[str, ...], ...]:
    """The services named by ``AOB_UP_SERVICES`` (``None`` means all of ``SERVICES``)."""
    if value is None:
        return SERVICES
    services = tuple(tuple(item.split()) for item in value.split(",") if item.strip())
    for service in services:
        if _SERVICE_ARITY.get(service[0]) != len(service):
            known = ", ".join(" ".join(s) for s in SERVICES)
            raise ConfigError(f"AOB_UP_SERVICES: unknown service {' '.join(service)!r} (known: {known})")
    return services


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """One supervised process: a name for logs, the command line that starts it and what it sets in the
    environment beyond the stack's own."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def for_service(cls, service: tuple[str, ...]) -> ChildSpec:
        """The spec running ``aob <service...>`` with this interpreter."""
        return cls(" ".join(service), (sys.executable, "-c", _CHILD_MAIN, *service))


class Supervisor:
    """Keeps every child running until ``shutdown()``; then SIGTERM, wait, SIGKILL whatever is left.

    Children run in their own sessions so a terminal's Ctrl-C reaches only the supervisor, and stopping a child
    also sweeps any process it left behind in its process group.
    """

    def __init__(
        self,
        children: Sequence[ChildSpec],
        env: Mapping[str, str],
        *,
        stop_timeout_s: float = 20.0,
        restart_backoff_s: float = 0.5,
        max_restart_backoff_s: float = 30.0,
        healthy_after_s: float = 10.0,
    ) -> None:
        self._children = list(children)
        self._env = dict(env)
        self._stop_timeout_s = stop_timeout_s
        self._restart_backoff_s = restart_backoff_s
        self._max_restart_backoff_s = max_restart_backoff_s
        self._healthy_after_s = healthy_after_s
        self._stopping = asyncio.Event()
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self.starts: dict[str, int] = {child.name: 0 for child in self._children}

    @property
    def pids(self) -> dict[str, int]:
        """Pid of each child that currently runs, by name."""
        return {name: proc.pid for name, proc in self._procs.items() if proc.returncode is None}

    async def run(self) -> None:
        """Start every child and keep it running; return once ``shutdown()`` was called and all have stopped."""
        await asyncio.gather(*(self._keep_running(child) for child in self._children))

    async def shutdown(self) -> None:
        """Ask ``run()`` to stop every child; idempotent."""
        self._stopping.set()

    async def _keep_running(self, child: ChildSpec) -> None:
        backoff_s = self._restart_backoff_s
        while not self._stopping.is_set():
            proc = await self._spawn(child)
            started = time.monotonic()
            exited = asyncio.create_task(proc.wait())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not exited.done():
                exited.cancel()
                await self._stop(child, proc)
                return
            _sweep_group(proc.pid)
            ran_s = time.monotonic() - started
            if ran_s >= self._healthy_after_s:
                backoff_s = self._restart_backoff_s
            logger.warning(
                "service %s (pid %d) exited with code %s after %.1fs; restarting in %.1fs",
                child.name,
                proc.pid,
                proc.returncode,
                ran_s,
                backoff_s,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(backoff_s):
                    await self._stopping.wait()
            backoff_s = min(backoff_s * 2, self._max_restart_backoff_s)

    async def _spawn(self, child: ChildSpec) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            *child.argv, env={**self._env, **child.env}, stdin=subprocess.DEVNULL, start_new_session=True
        )
        self._procs[child.name] = proc
        self.starts[child.name] += 1
        logger.info("started service %s (pid %d, start #%d)", child.name, proc.pid, self.starts[child.name])
        return proc

    async def _stop(self, child: ChildSpec, proc: asyncio.subprocess.Process) -> None:
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self._stop_timeout_s):
                await proc.wait()
        except TimeoutError:
            logger.warning(
                "service %s (pid %d) still running %.0fs after SIGTERM, killing it",
                child.name,
                proc.pid,
                self._stop_timeout_s,
            )
            _sweep_group(proc.pid)
            await proc.wait()
        _sweep_group(proc.pid)
        logger.info(
            "service %s (pid %d) stopped with code %s in %.0f ms",
            child.name,
            proc.pid,
            proc.returncode,
            (time.monotonic() - started) * 1000,
        )


def _sweep_group(pgid: int) -> None:
    """SIGKILL every process left in the child's process group (its own subprocesses)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
