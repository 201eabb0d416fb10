"""The interface every agent runtime implements: a job in, its output lines out, call replies in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class RuntimeJob:
    """One execution to start: who it is for (names, labels) and the job (one JSON line) for the program's stdin."""

    run_id: str
    node_id: str
    attempt: int
    payload: bytes
    deadline_s: float
    # Added to the program's environment: TRACEPARENT and the standard OTEL_* settings when tracing is on.
    environment: dict[str, str] = field(default_factory=dict)


class RuntimeFailure(Exception):
    """The runtime could not start or follow the program (no image, pod never started, engine unreachable)."""


class AgentRuntime(Protocol):
    """Runs the agent program once, with no network and no credentials: ``start`` yields its output lines as they
    come, ``send`` writes to its stdin; ``wait``, ``kill``, ``close``."""

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        """Start the program and write ``job.payload`` to its stdin, which stays open for ``send``; the iterator
        yields its output lines and ends when the output does."""
        ...

    async def send(self, data: bytes) -> None:
        """Write ``data`` (whole lines) to the program's stdin; raise ``RuntimeFailure`` when it is gone."""
        ...

    async def wait(self) -> int:
        """The exit status (negative: killed by that signal)."""
        ...

    async def kill(self) -> None:
        """Stop the program at once; safe to call at any time, more than once."""
        ...

    async def close(self) -> None:
        """Release what ``start`` made (container, Job, files); idempotent."""
        ...
