"""Settings of the ``agent`` worker: where agents run, which provider they call, their logs, budgets and secrets."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from workers.http import HttpWorkerSettings

AgentRuntimeName = Literal["process", "docker", "kubernetes"]


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class AgentWorkerSettings(HttpWorkerSettings):
    """Worker settings plus the agent's runtime, provider, log cap, budget and container limits.

    The HTTP guard settings (``AOB_HTTP_ALLOWLIST`` ...) are inherited: the agent's ``http_request`` tool obeys them.
    """

    agent_runtime: AgentRuntimeName = Field(default="process", description="process, docker or kubernetes")
    llm_base_url: str = Field(default="https://api.openai.com/v1", description="OpenAI-compatible endpoint")
    llm_api_key: SecretStr = Field(default=SecretStr(""), description="provider key, passed to agents on stdin")
    llm_model: str = Field(default="gpt-4o-mini", description="model used when a node names none")
    llm_max_retries: int = Field(default=4, ge=0)
    llm_breaker_threshold: int = Field(default=5, ge=1)
    api_url: str = Field(default="http://127.0.0.1:8080", description="orchestrator URL agents patch runs through")
    agent_log_cap_bytes: int = Field(default=10 * 1024 * 1024, ge=0, description="log bytes stored per execution")
    agent_max_line_bytes: int = Field(default=1024 * 1024, ge=256, description="longer lines are split")
    agent_log_ttl_s: int = Field(default=7 * 86_400, ge=1, description="life of logs:{R}:<node> after the node")
    agent_timeout_grace_s: float = Field(default=10.0, ge=0, description="beyond timeout_s before a kill")
    agent_token_ttl_margin_s: float = Field(default=60.0, ge=0)
    agent_secret_values: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        default=(), description="comma-separated values redacted from every agent log"
    )
    agent_daily_token_budget: int = Field(default=1_000_000, ge=0, description="tokens per tenant per UTC day")
    agent_process_command: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="comma-separated argv of the agent program; unset = python -m workers.agent.program",
    )
    agent_docker_url: str | None = Field(default=None, description="Docker API URL; unset = the environment's")
    agent_docker_image: str = "aob-agent:latest"
    agent_docker_command: Annotated[tuple[str, ...], NoDecode] = ("python3", "-m", "workers.agent.program")
    agent_docker_network: str = Field(default="bridge", description="network_mode of agent containers")
    agent_docker_memory: str = "512m"
    agent_docker_cpus: float = Field(default=1.0, gt=0)
    agent_docker_mounts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="comma-separated host:container[:ro] bind mounts"
    )
    agent_docker_workdir: str | None = None
    agent_k8s_namespace: str = "default"
    agent_k8s_image: str = "aob-agent:latest"
    agent_k8s_command: Annotated[tuple[str, ...], NoDecode] = ("python3", "-m", "workers.agent.program")
    agent_k8s_ttl_after_finished_s: int = Field(default=300, ge=0)
    agent_k8s_pod_start_timeout_s: float = Field(default=120.0, gt=0)
    agent_k8s_memory: str = "512Mi"
    agent_k8s_cpu: str = "1"

    @field_validator(
        "agent_secret_values",
        "agent_process_command",
        "agent_docker_command",
        "agent_docker_mounts",
        "agent_k8s_command",
        mode="before",
    )
    @classmethod
    def _parse_agent_lists(cls, value: Any) -> Any:  # not _parse_list: that would replace the HTTP one
        return _split_commas(value)
