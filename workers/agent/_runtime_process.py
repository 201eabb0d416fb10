"""The ``process`` runtime: the agent program as a local subprocess in its own process group."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from common.settings import AgentNodeFields
from workers.agent._lines import LineSplitter, stderr_record
from workers.agent._runtime_api import RuntimeFailure, RuntimeJob

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Only these pass through: the worker's own environment may hold the provider key and database URLs.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")
_READ_BYTES = 65_536
_QUEUE_BATCHES = 16


class ProcessRuntime:
    """Starts ``python -m workers.agent.program`` (or ``agent_process_command``), job on stdin, stdout as lines."""

    def __init__(self, settings: AgentNodeFields) -> None:
        self._command = list(settings.agent_process_command) or [sys.executable, "-m", "workers.agent.program"]
        self._max_line_bytes = settings.agent_max_line_bytes
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ}
        env |= {"PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=PROJECT_ROOT,
                start_new_session=True,  # its own process group, so kill takes its children too
            )
        except OSError as exc:
            raise RuntimeFailure(f"agent program {self._command[0]!r}: could not start: {exc}") from exc
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(job.payload)
            await proc.stdin.drain()
        proc.stdin.close()
        return self._lines(proc.stdout, proc.stderr)

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
        if self._proc is not None:
            await self._proc.wait()
