"""The job the worker writes to the agent program's stdin: prompt, tools and limits, and no credentials: the
program reaches the model, the network and the API only through the worker (``common.agent_protocol``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.json_schema import checked_schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    patch: bool = False
    """Whether the worker will carry out ``patch_workflow`` calls (it holds a run-scoped token for this execution)."""
    max_call_bytes: int = Field(default=1024 * 1024, ge=1024)
    """The longest call line the worker reads whole: a bigger call fails at once instead of being cut."""

    @field_validator("output_schema")
    @classmethod
    def _check_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        # A job can carry a definition saved before schemas were checked as they are now: check again here.
        return None if schema is None else checked_schema(schema)
