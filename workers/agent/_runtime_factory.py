"""Choosing the agent runtime from settings: one runtime per execution, sharing the engine client."""

from __future__ import annotations

from typing import Any

from common.settings import AgentNodeFields
from workers.agent._runtime_api import AgentRuntime


class RuntimeFactory:
    """Makes one runtime per execution of the configured kind, sharing the engine client between them."""

    def __init__(self, settings: AgentNodeFields) -> None:
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
