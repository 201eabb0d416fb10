"""Run starts coalesced: starts asked for while a start script is in flight go together in the next call."""

from __future__ import annotations

import asyncio

from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_runs
from common.workflow.ir import IR

_Waiting = tuple[RunStart, IR, "asyncio.Future[str]"]


class StartBatcher:
    """Starts runs through ``start_runs``, one call at a time: a start waits for the call in flight, then goes with
    every start queued meanwhile. Alone it costs one call as before; a burst of submissions costs a few calls."""

    def __init__(self, scripts: Scripts, *, max_agents: int, max_batch: int = 100) -> None:
        self._scripts = scripts
        self._max_agents = max_agents
        self._max_batch = max_batch
        self._queue: list[_Waiting] = []
        self._flushing: asyncio.Task[None] | None = None

    async def start(self, start: RunStart, ir: IR) -> str:
        """Start one run (idempotently, as ``start_run``); returns its status once its batch's call answered."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._queue.append((start, ir, future))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        # A cancelled request stops waiting; its run still starts with its batch, as a start already sent would.
        return await asyncio.shield(future)

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                statuses = await start_runs(
                    self._scripts, [(start, ir) for start, ir, _ in batch], max_agents=self._max_agents
                )
            except BaseException as exc:
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    # Cancelled (shutdown): nothing more is sent; what still waits fails rather than hangs.
                    for *_, future in self._queue:
                        future.set_exception(exc)
                    self._queue = []
                    raise
            else:
                for (*_, future), status in zip(batch, statuses, strict=True):
                    if not future.done():
                        future.set_result(status)
