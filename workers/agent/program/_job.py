"""The job the worker writes to the agent program's stdin: prompt, tools, limits, provider and API access."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from common.json_schema import checked_schema
from common.settings import DEFAULT_DENY_PATHS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LlmAccess(_Strict):
    """Where the model is served and how hard to try; the key is a ``SecretStr`` so it never shows in a repr."""

    base_url: str = Field(min_length=1)
    api_key: SecretStr
    max_retries: int = Field(default=4, ge=0, le=20)
    breaker_threshold: int = Field(default=5, ge=1)
    backoff_base_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)


class ApiAccess(_Strict):
    """The orchestrator API and a token scoped to this run, used by ``patch_workflow``."""

    url: str = Field(min_length=1)
    token: SecretStr


class HttpAccess(_Strict):
    """The SSRF guard's settings for ``http_request`` and pipeline fetches."""

    allowlist: list[str] = Field(default_factory=list)
    deny_paths: list[str] = Field(default_factory=lambda: list(DEFAULT_DENY_PATHS))
    max_response_bytes: int = Field(default=1024 * 1024, ge=1)


class JobContext(_Strict):
    """What ``get_context`` returns: the run's inputs and the outputs of upstream nodes."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    upstream: dict[str, Any] = Field(default_factory=dict)


class AgentJob(_Strict):
    """One agent node execution; ``tools`` None means every available tool (``finish`` is always offered)."""

    v: Literal[1] = 1
    run_id: str = Field(min_length=1)
    node_id: str = Field(min_length=1)
    attempt: int = Field(default=1, ge=1)
    prompt: str
    system: str | None = None
    tools: list[str] | None = None
    model: str = Field(min_length=1)
    max_steps: int = Field(default=10, ge=1)
    max_tokens: int = Field(default=100_000, ge=1)
    timeout_s: float = Field(default=300.0, gt=0)
    output_schema: dict[str, Any] | None = None
    context: JobContext = Field(default_factory=JobContext)
    llm: LlmAccess
    api: ApiAccess | None = None
    http: HttpAccess = Field(default_factory=HttpAccess)

    @field_validator("output_schema")
    @classmethod
    def _check_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        # A job can carry a definition saved before schemas were checked as they are now: check again here.
        return None if schema is None else checked_schema(schema)
