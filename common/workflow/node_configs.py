"""Config models of the node types aob runs: what each type's ``config`` object may hold."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from common.json_schema import checked_schema
from common.redaction import safe_url
from common.secrets.references import is_secret_reference

AGENT_TOOLS = ("http_request", "get_context", "execute_pipeline", "patch_workflow", "finish")
AgentTool = Literal["http_request", "get_context", "execute_pipeline", "patch_workflow", "finish"]
HITL_BRANCHES = ("approved", "rejected")
# Node types an agent with ``patch_workflow`` may add when its config does not say: none that gates, starts
# other workflows or fans out (``hitl``, ``workflow``, ``loop``, ``map`` only when listed in ``patch.allowed_types``).
DEFAULT_PATCH_TYPES = ("http", "agent", "noop", "transform", "delay", "branch")
_TEMPLATE_MARKERS = ("{{", "{%", "$")


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HttpConfig(_Config):
    """Calls an HTTP endpoint; the output holds status, headers and the (JSON-decoded if possible) body."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(description="http(s) URL; may contain templates")
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict, description="parameter -> string, number or boolean")
    json_body: Any = Field(default=None, alias="json", description="JSON request body")
    body: str | None = Field(default=None, description="raw request body")
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    expected_status: list[int] | None = Field(default=None, description="accepted status codes; unset = any 2xx")
    follow_redirects: bool = True
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    retry_on_4xx: bool = False

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str) -> str:
        # A templated URL (``{{ }}``, ``{% %}`` or the original's ``$inputs``/``$nodes`` references) is only
        # known at run time; the SSRF guard checks it then.
        if any(marker in url for marker in _TEMPLATE_MARKERS):
            return url
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not a valid URL (got {safe_url(url)!r}); expected http:// or https://")
        return url

    @field_validator("query")
    @classmethod
    def _check_query(cls, query: dict[str, Any]) -> dict[str, Any]:
        bad = [name for name, value in query.items() if not isinstance(value, str | int | float | bool)]
        if bad:
            raise ValueError(f"query values must be strings, numbers or booleans (got other values for {bad})")
        return query

    @field_validator("expected_status")
    @classmethod
    def _check_statuses(cls, statuses: list[int] | None) -> list[int] | None:
        bad = [code for code in statuses or [] if not 100 <= code <= 599]
        if bad:
            raise ValueError(f"HTTP status codes lie in 100..599 (got {bad})")
        return statuses

    @model_validator(mode="after")
    def _one_body(self) -> HttpConfig:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give either 'json' or 'body', not both")
        return self


class AgentPatchConfig(_Config):
    """What an agent with the ``patch_workflow`` tool may add to its run (it never changes what exists)."""

    allowed_types: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PATCH_TYPES),
        description="node types the agent may add downstream of itself",
    )


class AgentConfig(_Config):
    """Runs an LLM agent with tools until it calls ``finish`` or hits a limit."""

    prompt: str = Field(min_length=1)
    system: str | None = None
    tools: list[AgentTool] | None = Field(
        default=None, description="tools offered; unset = every tool except patch_workflow, which must be listed"
    )
    patch: AgentPatchConfig | None = Field(default=None, description="what patch_workflow may add; unset = defaults")
    model: str | None = None
    api_key: str | None = Field(
        default=None,
        description="the model credential: one `{{ secrets.NAME }}` reference, resolved by the worker and never"
        " shown to the agent program or the model; unset = the worker's AOB_LLM_API_KEY",
    )
    max_steps: int = Field(default=10, ge=1, le=100)
    max_tokens: int = Field(default=20_000, ge=1)
    timeout_s: float = Field(default=300.0, gt=0)
    output_schema: dict[str, Any] | None = Field(default=None, description="JSON Schema the result must match")

    @property
    def may_patch(self) -> bool:
        """Whether the agent gets a token to patch its run: only when ``tools`` lists ``patch_workflow``."""
        return self.tools is not None and "patch_workflow" in self.tools

    @property
    def patch_types(self) -> list[str]:
        """The node types this agent's patches may add."""
        return (self.patch or AgentPatchConfig()).allowed_types

    @field_validator("api_key")
    @classmethod
    def _only_a_secret(cls, value: str | None) -> str | None:
        # A literal key here would sit in plaintext in the definition, the IR and every run's stored config.
        if value is not None and not is_secret_reference(value):
            raise ValueError("expected one {{ secrets.NAME }} reference (store the key with `aob secrets set NAME`)")
        return value

    @field_validator("output_schema")
    @classmethod
    def _check_output_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if schema is None else checked_schema(schema)


class HitlConfig(_Config):
    """Waits for human approval; its outgoing edges pick ``branch: approved`` or ``branch: rejected``."""

    title: str = Field(min_length=1)
    description: str | None = None
    approvers: list[str] | None = None
    required_approvals: int = Field(default=1, ge=1)
    allow_self_approval: bool = False
    timeout_s: float | None = Field(default=None, gt=0)
    on_timeout: Literal["approve", "reject"] = "reject"

    @model_validator(mode="after")
    def _enough_approvers(self) -> HitlConfig:
        if self.approvers is not None and self.required_approvals > len(self.approvers):
            raise ValueError(
                f"required_approvals is {self.required_approvals} but only {len(self.approvers)} approvers are listed"
            )
        return self


class NoopConfig(_Config):
    """Does nothing; useful as a join point."""


class TransformConfig(_Config):
    """Outputs ``output`` with its templates evaluated; a string that is exactly one template keeps its type."""

    output: Any = Field(description="any JSON; its strings may be templates")


class DelayConfig(_Config):
    """Waits ``seconds`` before its successors run (through the timer, not a sleeping task)."""

    # strict: a template or numeric string here would only fail at run time.
    seconds: float = Field(ge=0, le=86_400, strict=True)


class BranchConfig(_Config):
    """Passes its upstream output on; the ``when`` of its outgoing edges picks the live paths."""


def _check_body(body: str | dict[str, Any]) -> str | dict[str, Any]:
    """A workflow reference must name something; an inline body is compiled by the compiler, which owns it."""
    if isinstance(body, str) and not body.strip():
        raise ValueError("expected a workflow id or name, got an empty string")
    return body


class _ChildRunsConfig(_Config):
    """What every node that starts child runs shares: the inputs each child gets."""

    inputs: dict[str, Any] = Field(default_factory=dict, description="child run inputs; values may be templates")


class WorkflowNodeConfig(_ChildRunsConfig):
    """Runs another workflow of the tenant as a child run; the node's output is the child's outputs."""

    workflow: str = Field(min_length=1, description="workflow id or name")
    version: int | None = Field(default=None, ge=1, description="unset = the latest version when the node runs")


class LoopConfig(_ChildRunsConfig):
    """Runs ``body`` as child runs one after another until ``until`` holds over the last one's outputs.

    ``inputs`` templates also see ``loop.index`` (0-based) and ``loop.previous`` (the previous iteration's
    outputs, null at first); ``until`` sees ``output`` and ``loop``. Output: ``{"output", "iterations"}``.
    """

    body: str | dict[str, Any] = Field(description="workflow id or name, or an inline definition")
    version: int | None = Field(default=None, ge=1, description="version of a referenced body; unset = latest")
    until: str = Field(min_length=1, description="condition over the last iteration's outputs (`output`)")
    max_iterations: int = Field(default=10, ge=1, le=10_000)
    on_max: Literal["fail", "succeed"] = "fail"

    _body = field_validator("body")(_check_body)

    @field_validator("until")
    @classmethod
    def _check_until(cls, until: str) -> str:
        from common.workflow.templates import check_condition_syntax

        error = check_condition_syntax(until)
        if error is not None:
            raise ValueError(error)
        return until


class MapConfig(_ChildRunsConfig):
    """Runs ``body`` once per item of ``items`` as child runs, at most ``concurrency`` at once.

    ``inputs`` templates also see ``item`` and ``index``. Output: ``{"results": [child outputs in item order,
    null for failed items], "errors": [{"index", "run_id", "error"}]}``.
    """

    items: Any = Field(description="a list, or a template that yields one")
    body: str | dict[str, Any] = Field(description="workflow id or name, or an inline definition")
    version: int | None = Field(default=None, ge=1, description="version of a referenced body; unset = latest")
    concurrency: int = Field(default=10, ge=1, le=1_000)
    max_items: int = Field(default=1_000, ge=1, le=100_000)
    on_item_failure: Literal["fail", "continue"] = "fail"

    _body = field_validator("body")(_check_body)

    @field_validator("items")
    @classmethod
    def _check_items(cls, items: Any) -> Any:
        if isinstance(items, list) or (isinstance(items, str) and "{{" in items):
            return items
        raise ValueError(f"expected a list or a template yielding one, got {type(items).__name__}")
