"""The interface every agent runtime implements: a job in, its output lines out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RuntimeJob:
    """One execution to start: who it is for (names, labels) and the job JSON for the program's stdin."""

    run_id: str
    node_id: str
    attempt: int
    payload: bytes
    deadline_s: float


class RuntimeFailure(Exception):
    """The runtime could not start or follow the program (no image, pod never started, engine unreachable)."""


class AgentRuntime(Protocol):
    """Runs the agent program once: ``start`` yields its output lines as they come; ``wait``, ``kill``, ``close``."""

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        """Start the program with ``job``; the iterator yields its output lines and ends when the output does."""
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
