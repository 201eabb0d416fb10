"""The ``process`` runtime: the agent program as a local subprocess in its own process group.

The child gets a clean environment and never the worker's credentials; the worker is non-dumpable (see
``forbid_inspection``), so a child without ``CAP_SYS_PTRACE`` cannot read ``/proc/<worker>/environ``. A root worker
also puts the child in a network namespace of its own (no network at all: every model and tool call goes through the
worker), then either runs it as ``agent_process_user`` or, unset, keeps uid 0 with every capability dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pwd
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from common.settings import AgentNodeFields
from workers.agent._lines import LineSplitter, stderr_record
from workers.agent._runtime_api import RuntimeFailure, RuntimeJob

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Only these pass through: the worker's own environment may hold the provider key and database URLs.
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR")
_READ_BYTES = 65_536
_QUEUE_BATCHES = 16
_CLONE_NEWNET = 0x40000000
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_NO_NEW_PRIVS = 38
# SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP and SECBIT_KEEP_CAPS_LOCKED with their locks: uid 0 gains no capability on
# exec and none can be switched back on.
_SECUREBITS = 0b0011_1111
_MAX_CAPABILITY = 63


def child_isolation(user: str | None) -> Callable[[], None]:
    """What the forked child of a root worker runs before ``exec``: a new network namespace (only a loopback that is
    down), then ``user``'s uid and gid without supplementary groups, or for ``None`` uid 0 without any capability.
    Raises ``RuntimeFailure`` for an unknown or root user."""
    entry = None
    if user is not None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise RuntimeFailure(f"agent_process_user: no user {user!r} on this host") from None
        if entry.pw_uid == 0:
            raise RuntimeFailure(f"agent_process_user: {user!r} is root; name another user or leave it unset")
    # Looked up before the fork: the child only makes system calls.
    libc = ctypes.CDLL(None, use_errno=True)
    unshare, prctl = libc.unshare, libc.prctl

    def checked(result: int, what: str) -> None:
        if result != 0:
            raise OSError(ctypes.get_errno(), f"{what} failed")

    def isolate() -> None:
        checked(unshare(_CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        if entry is not None:
            os.setgroups([])
            os.setgid(entry.pw_gid)
            os.setuid(entry.pw_uid)
        else:
            os.setgroups([])
            checked(prctl(_PR_SET_SECUREBITS, _SECUREBITS, 0, 0, 0), "prctl(PR_SET_SECUREBITS)")
            for capability in range(_MAX_CAPABILITY + 1):
                # Capabilities past the kernel's last answer EINVAL: there is nothing to drop.
                prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0)
        checked(prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")

    return isolate


class ProcessRuntime:
    """Starts ``python -m workers.agent.program`` (or ``agent_process_command``), job on stdin, stdout as lines."""

    def __init__(self, settings: AgentNodeFields) -> None:
        self._command = list(settings.agent_process_command) or [sys.executable, "-m", "workers.agent.program"]
        self._max_line_bytes = settings.agent_max_line_bytes
        self._user = settings.agent_process_user
        self._proc: asyncio.subprocess.Process | None = None
        self._stdin: asyncio.StreamWriter | None = None

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env |= {**job.environment, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
        isolate = None
        if os.geteuid() == 0:
            isolate = child_isolation(self._user)
        elif self._user is not None:
            raise RuntimeFailure(f"agent_process_user={self._user!r} needs a worker running as root")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,  # its own process group, so kill takes its children too
                preexec_fn=isolate,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise RuntimeFailure(f"agent program {self._command[0]!r}: could not start: {exc}") from exc
        proc = self._proc
        if proc.stdin is None or proc.stdout is None or proc.stderr is None:
            raise RuntimeFailure("agent program: its pipes were not opened")
        self._stdin = proc.stdin
        await self.send(job.payload)
        return self._lines(proc.stdout, proc.stderr)

    async def send(self, data: bytes) -> None:
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            raise RuntimeFailure("agent program: its stdin is closed")
        try:
            stdin.write(data)
            await stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise RuntimeFailure(f"agent program: its stdin broke off: {exc}") from exc

    async def _lines(self, stdout: asyncio.StreamReader, stderr: asyncio.StreamReader) -> AsyncIterator[str]:
        # Lines travel in per-read batches: one queue hop per chunk, not per line.
        queue: asyncio.Queue[list[str] | None] = asyncio.Queue(maxsize=_QUEUE_BATCHES)
        readers = [
            asyncio.create_task(self._pump(stdout, queue, wrap=False)),
            asyncio.create_task(self._pump(stderr, queue, wrap=True)),
        ]
        open_streams = len(readers)
        try:
            while open_streams:
                batch = await queue.get()
                if batch is None:
                    open_streams -= 1
                    continue
                for line in batch:
                    yield line
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _pump(self, stream: asyncio.StreamReader, queue: asyncio.Queue[list[str] | None], *, wrap: bool) -> None:
        splitter = LineSplitter(self._max_line_bytes)
        try:
            while chunk := await stream.read(_READ_BYTES):
                if lines := splitter.feed(chunk):
                    await queue.put([stderr_record(line) for line in lines] if wrap else lines)
        except OSError as exc:
            logger.warning("agent program output broke off: %s", exc)
        if lines := splitter.end():
            await queue.put([stderr_record(line) for line in lines] if wrap else lines)
        await queue.put(None)

    async def wait(self) -> int:
        if self._proc is None:
            raise RuntimeFailure("agent program: wait() before start()")
        return await self._proc.wait()

    async def kill(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    async def close(self) -> None:
        await self.kill()
        if self._stdin is not None:
            self._stdin.close()
        if self._proc is not None:
            await self._proc.wait()
            # Output pipes nobody read to their end (a start that failed, a follow cut short) would keep the
            # transport open until the garbage collector finds it, after its loop may have closed.
            transport = getattr(self._proc, "_transport", None)
            if transport is not None:
                transport.close()
