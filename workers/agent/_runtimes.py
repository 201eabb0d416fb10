"""The interface every agent runtime implements, and choosing one from settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from workers.agent._settings import AgentWorkerSettings


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


class RuntimeFactory:
    """Makes one runtime per execution of the configured kind, sharing the engine client between them."""

    def __init__(self, settings: AgentWorkerSettings) -> None:
        self._settings = settings
        self._client: Any = None

    def __call__(self) -> AgentRuntime:
        settings = self._settings
        if settings.agent_runtime == "docker":
            from workers.agent._runtime_docker import DockerRuntime, docker_client

            self._client = self._client or docker_client(settings)
            return DockerRuntime(settings, self._client)
        if settings.agent_runtime == "kubernetes":
            from workers.agent._runtime_kubernetes import KubernetesRuntime, kubernetes_apis

            self._client = self._client or kubernetes_apis()
            return KubernetesRuntime(settings, *self._client)
        from workers.agent._runtime_process import ProcessRuntime

        return ProcessRuntime(settings)

    def close(self) -> None:
        """Close the shared engine client, if one was made."""
        if self._client is not None and hasattr(self._client, "close"):
            self._client.close()
        self._client = None
