"""The workflow definition users write (JSON), its JSON Schema, content hash and error formatting.

The models also accept the original platform's spellings (edge ``condition``, node ``timeout_ms``,
retry ``backoff_ms``/``backoff_multiplier``, type ``conditional``) and normalise them on validation.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.json_schema import models_json_schema

from common.json_schema import checked_schema
from common.workflow.ir import RetryPolicy
from common.workflow.node_types import NODE_TYPES, TYPE_ALIASES

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
# An edge whose ``when`` is exactly this string is taken only when its source failed.
FAILURE_CONDITION = "failed"

_COMPAT = "original platform's spelling; normalised to "
_METADATA = "free-form annotations (a UI's layout, say); the engine keeps them and ignores them"


class RetrySpec(BaseModel):
    """A node's retry policy as written; ``policy()`` gives the IR form."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int | None = Field(default=None, ge=1, le=100)
    backoff_s: float | None = Field(default=None, ge=0)
    max_backoff_s: float | None = Field(default=None, ge=0)
    multiplier: float | None = Field(default=None, ge=1)
    backoff_ms: float | None = Field(default=None, ge=0, exclude=True, description=_COMPAT + "backoff_s")
    backoff_multiplier: float | None = Field(default=None, ge=1, exclude=True, description=_COMPAT + "multiplier")

    @model_validator(mode="after")
    def _normalise(self) -> RetrySpec:
        if self.backoff_ms is not None:
            if self.backoff_s is not None:
                raise ValueError("give backoff_s or backoff_ms, not both")
            self.backoff_s, self.backoff_ms = self.backoff_ms / 1000, None
        if self.backoff_multiplier is not None:
            if self.multiplier is not None:
                raise ValueError("give multiplier or backoff_multiplier, not both")
            self.multiplier, self.backoff_multiplier = self.backoff_multiplier, None
        return self

    def policy(self) -> RetryPolicy:
        """The IR retry policy, with defaults for what the definition leaves out."""
        return RetryPolicy.model_validate(self.model_dump(exclude_none=True))


class NodeSpec(BaseModel):
    """One node as written: its id, type, per-type config and execution options."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=NODE_ID_PATTERN)
    type: str = Field(min_length=1, description="node type; unknown types are skipped at run time")
    name: str | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = Field(default=None, description=_METADATA)
    config: dict[str, Any] = Field(default_factory=dict, description="the type's config: its schema follows from type")
    retry: RetrySpec | None = None
    timeout_s: float | None = Field(default=None, gt=0)
    timeout_ms: float | None = Field(default=None, gt=0, exclude=True, description=_COMPAT + "timeout_s")
    join: Literal["all", "any"] = "all"
    # Config fields a legacy type of the original platform carried and aob's type does not know: dropped.
    _ignored_config: tuple[str, ...] = PrivateAttr(default=())
    _written_type: str | None = PrivateAttr(default=None)

    @field_validator("type")
    @classmethod
    def _canonical_type(cls, node_type: str) -> str:
        return TYPE_ALIASES.get(node_type, node_type)

    @model_validator(mode="wrap")
    @classmethod
    def _legacy_config(cls, data: Any, handler: ModelWrapValidatorHandler[NodeSpec]) -> NodeSpec:
        # The original platform ignored what its legacy types did not use (a `conditional` node's own condition,
        # say): its definitions must run unchanged, so those fields are dropped with a warning, not refused.
        node = handler(data)
        written = data.get("type") if isinstance(data, dict) else None
        model = NODE_TYPES.get(node.type) if written in TYPE_ALIASES else None
        if model is not None:
            known = {field.alias or name for name, field in model.model_fields.items()} | set(model.model_fields)
            node._written_type = written
            node._ignored_config = tuple(key for key in node.config if key not in known)
            node.config = {key: value for key, value in node.config.items() if key in known}
        return node

    @property
    def ignored_config(self) -> tuple[str, ...]:
        """Config fields of a legacy node type that were dropped (see ``_legacy_config``)."""
        return self._ignored_config

    @property
    def written_type(self) -> str:
        """The type as the definition spelled it (a legacy alias, or ``type`` itself)."""
        return self._written_type or self.type

    @model_validator(mode="after")
    def _normalise(self) -> NodeSpec:
        if self.timeout_ms is not None:
            if self.timeout_s is not None:
                raise ValueError("give timeout_s or timeout_ms, not both")
            self.timeout_s, self.timeout_ms = self.timeout_ms / 1000, None
        return self


class EdgeSpec(BaseModel):
    """A dependency ``from -> to``, optionally guarded by a ``when`` expression or a ``branch`` label."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(alias="from")
    to: str
    when: str | None = Field(
        default=None, min_length=1, description=f"condition on the source's output, or '{FAILURE_CONDITION}'"
    )
    condition: str | None = Field(default=None, min_length=1, exclude=True, description=_COMPAT + "when")
    branch: str | None = Field(default=None, min_length=1, description="label the source must decide")

    @model_validator(mode="after")
    def _normalise(self) -> EdgeSpec:
        if self.condition is not None:
            if self.when is not None and self.when != self.condition:
                raise ValueError("give when or condition, not both")
            self.when, self.condition = self.condition, None
        return self

    @property
    def on_failure(self) -> bool:
        """True for an edge taken only when its source failed."""
        return self.when == FAILURE_CONDITION


class WorkflowDefinition(BaseModel):
    """A workflow as users write it: a DAG of nodes and edges, plus inputs schema and output templates."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    metadata: dict[str, Any] | None = Field(default=None, description=_METADATA)
    inputs: dict[str, Any] | None = Field(default=None, description="JSON Schema of the run inputs")
    nodes: list[NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(default_factory=list)
    outputs: dict[str, Any] | None = Field(default=None, description="name -> template evaluated at the end")

    @field_validator("inputs")
    @classmethod
    def _check_inputs_schema(cls, schema: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if schema is None else checked_schema(schema)

    def to_json(self) -> dict[str, Any]:
        """The normalised definition as plain JSON (aliases, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def definition_hash(definition: WorkflowDefinition) -> str:
    """Hex sha256 of the normalised definition's canonical JSON (sorted keys), for content-addressed versions."""
    canonical = json.dumps(definition.to_json(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_schema() -> dict[str, Any]:
    """JSON Schema of a workflow definition, with each known node type's config schema chosen by ``type``."""
    models: list[tuple[type[BaseModel], Literal["validation"]]] = [(WorkflowDefinition, "validation")]
    models += [(model, "validation") for model in NODE_TYPES.values()]
    _, top = models_json_schema(models, ref_template="#/$defs/{model}")
    defs = top["$defs"]
    by_type = {name: model.__name__ for name, model in NODE_TYPES.items()}
    by_type |= {alias: by_type[target] for alias, target in TYPE_ALIASES.items()}
    defs["NodeSpec"]["allOf"] = [
        {
            "if": {"properties": {"type": {"const": name}}, "required": ["type"]},
            "then": {"properties": {"config": {"$ref": f"#/$defs/{model_name}"}}},
        }
        for name, model_name in by_type.items()
    ]
    root: dict[str, Any] = {"$schema": "https://json-schema.org/draft/2020-12/schema", **defs.pop("WorkflowDefinition")}
    root["$defs"] = defs
    return root


def error_lines(exc: ValidationError, *, at: str = "") -> list[str]:
    """One ``path: message (got value)`` line per pydantic error, with paths like ``nodes[2].config.url``."""
    lines = []
    for error in exc.errors(include_url=False):
        path = _path(at, error["loc"]) or "definition"
        if error["type"] == "json_schema":
            # A schema's fault sits somewhere inside it: its path continues the field's.
            where = error.get("ctx", {}).get("where", "")
            path += f"{'' if not where or where.startswith('[') else '.'}{where}"
            lines.append(f"{path}: {error.get('ctx', {}).get('detail', error['msg'])}")
            continue
        lines.append(f"{path}: {_message(error['type'], error['msg'], error.get('input'))}")
    return lines


def _path(at: str, loc: Sequence[int | str]) -> str:
    path = at
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


_MESSAGES = {"missing": "required field missing", "extra_forbidden": "unknown field"}
_JSON_TYPES: dict[type, str] = {dict: "object", list: "array"}


def _message(error_type: str, message: str, value: Any) -> str:
    if error_type in _MESSAGES:
        return _MESSAGES[error_type]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if "(got " in message:
        return message
    if value is None or isinstance(value, str | int | float | bool):
        shown = repr(value)
        return f"{message} (got {shown[:77] + '...' if len(shown) > 80 else shown})"
    if error_type.endswith("_type"):
        return f"{message} (got {_JSON_TYPES.get(type(value), type(value).__name__)})"
    return message
