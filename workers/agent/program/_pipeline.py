"""``execute_pipeline``: a small declarative pipeline over JSON rows (fetch, filter, sort, select, top_k), no eval."""

from __future__ import annotations

import json
import operator
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from common.errors import ValidationFailed

MAX_ROWS = 10_000
MAX_RESULT_BYTES = 256 * 1024


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FetchStep(_Step):
    """Load rows with a guarded HTTP request: a JSON list, or the list found at ``path`` (dotted) in an object."""

    type: Literal["fetch"]
    url: str
    method: Literal["GET", "POST"] = "GET"
    headers: dict[str, str] | None = None
    body: Any = None
    path: str | None = None


class FilterStep(_Step):
    type: Literal["filter"]
    field: str
    op: Literal["==", "!=", "<", "<=", ">", ">=", "contains", "in"]
    value: Any


class SortStep(_Step):
    type: Literal["sort"]
    field: str
    desc: bool = False


class SelectStep(_Step):
    type: Literal["select"]
    fields: list[str] = Field(min_length=1)


class TopKStep(_Step):
    type: Literal["top_k"]
    k: int = Field(ge=0, le=MAX_ROWS)


PipelineStep = Annotated[FetchStep | FilterStep | SortStep | SelectStep | TopKStep, Field(discriminator="type")]
_STEPS = TypeAdapter(list[PipelineStep])
Fetch = Callable[[FetchStep], Awaitable[Any]]
"""Performs a fetch step's request and returns the decoded body."""

PIPELINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "description": (
                "Run in order. First {type: fetch, url, method?, headers?, body?, path?} (path: dotted path to the "
                "list inside a JSON object), then any of {type: filter, field, op: ==|!=|<|<=|>|>=|contains|in, "
                "value}, {type: sort, field, desc?}, {type: select, fields: [..]}, {type: top_k, k}. Fields may be "
                "dotted paths."
            ),
            "items": {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]},
        }
    },
    "required": ["steps"],
    "additionalProperties": False,
}

_STEP_TYPES = frozenset({"fetch", "filter", "sort", "select", "top_k"})
_MISSING: Any = object()
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "contains": lambda field, value: value in field,
    "in": lambda field, value: field in value,
}


def parse_steps(raw: Any) -> tuple[FetchStep, list[PipelineStep]]:
    """Validate raw steps into the fetch and the steps after it; raise ``ValidationFailed`` naming each problem."""
    try:
        steps = _STEPS.validate_python(raw)
    except ValidationError as exc:
        errors = []
        for error in exc.errors():
            # Drop the discriminator tag pydantic puts in the location, so paths read ``steps[1].op``.
            loc = [part for part in error["loc"] if not (isinstance(part, str) and part in _STEP_TYPES)]
            path = "steps" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
            errors.append(f"{path}: {error['msg']}")
        raise ValidationFailed(errors) from None
    if not steps or not isinstance(steps[0], FetchStep):
        got = f"a {steps[0].type} step" if steps else "no steps"
        raise ValidationFailed([f"steps[0]: expected a fetch step first, got {got}"])
    for index, step in enumerate(steps[1:], start=1):
        if isinstance(step, FetchStep):
            raise ValidationFailed([f"steps[{index}]: only the first step may fetch"])
    return steps[0], steps[1:]


def field_value(row: Any, path: str) -> Any:
    """The value at dotted ``path`` in ``row`` (list indexes allowed), or a missing marker."""
    value = row
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def rows_from(body: Any, path: str | None) -> list[Any]:
    """The rows of a fetched body: the body itself if it is a list, else the list at ``path``."""
    rows = body if path is None else field_value(body, path)
    if rows is _MISSING:
        raise ValidationFailed([f"fetch: path {path!r} not found in the response"])
    if not isinstance(rows, list):
        where = f"at path {path!r}" if path else "(no path given)"
        raise ValidationFailed([f"fetch: expected a JSON list of rows {where}, got {type(rows).__name__}"])
    if len(rows) > MAX_ROWS:
        raise ValidationFailed([f"fetch: {len(rows)} rows exceed the cap of {MAX_ROWS}"])
    return rows


def _matches(row: Any, step: FilterStep) -> bool:
    value = field_value(row, step.field)
    if value is _MISSING:
        return False
    try:
        return bool(_COMPARISONS[step.op](value, step.value))
    except TypeError:
        # Rows whose field cannot be compared with the value (a string against a number) do not match.
        return False


def _sorted(rows: list[Any], step: SortStep, index: int) -> list[Any]:
    present = [row for row in rows if field_value(row, step.field) not in (_MISSING, None)]
    absent = [row for row in rows if field_value(row, step.field) in (_MISSING, None)]
    try:
        ordered = sorted(present, key=lambda row: field_value(row, step.field), reverse=step.desc)
    except TypeError:
        kinds = sorted({type(field_value(row, step.field)).__name__ for row in present})
        raise ValidationFailed(
            [f"steps[{index}]: cannot sort by {step.field!r}: values of mixed types ({', '.join(kinds)})"]
        ) from None
    # Rows without the field go last whichever the direction.
    return ordered + absent


def _select(row: Any, fields: Sequence[str]) -> dict[str, Any]:
    selected = {}
    for name in fields:
        value = field_value(row, name)
        selected[name] = None if value is _MISSING else value
    return selected


def apply_steps(rows: list[Any], steps: Sequence[PipelineStep]) -> list[Any]:
    """Apply the non-fetch steps to ``rows`` in order (``steps`` indexes start after the fetch)."""
    for index, step in enumerate(steps, start=1):
        if isinstance(step, FilterStep):
            rows = [row for row in rows if _matches(row, step)]
        elif isinstance(step, SortStep):
            rows = _sorted(rows, step, index)
        elif isinstance(step, SelectStep):
            rows = [_select(row, step.fields) for row in rows]
        elif isinstance(step, TopKStep):
            rows = rows[: step.k]
    return rows


async def execute_pipeline(raw_steps: Any, fetch: Fetch) -> dict[str, Any]:
    """Run a pipeline and return ``{rows, count}``; raise ``ValidationFailed`` for bad steps, data or result size."""
    first, rest = parse_steps(raw_steps)
    rows = apply_steps(rows_from(await fetch(first), first.path), rest)
    size = len(json.dumps(rows, ensure_ascii=False, default=str).encode())
    if size > MAX_RESULT_BYTES:
        raise ValidationFailed(
            [f"result: {size} bytes exceed the cap of {MAX_RESULT_BYTES}; narrow it with select or top_k"]
        )
    return {"rows": rows, "count": len(rows)}
