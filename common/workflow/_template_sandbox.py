"""The sandbox templates run in: Jinja's immutable sandbox with bounded output, loops, ranges and arithmetic."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing

MAX_OUTPUT_CHARS = 1_000_000
MAX_RANGE = 10_000
MAX_LOOP_ITERATIONS = 100_000
MAX_POWER_BITS = 100_000

# Filters that cannot amplify a small template into unbounded memory or time (`batch`, `slice`, `center`,
# `indent`, `format` take sizes from the template); `join` and `replace` are replaced by size-checked versions.
_ALLOWED_FILTERS = frozenset(
    {
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "filesizeformat",
        "first", "float", "forceescape", "groupby", "int", "items", "join", "last", "length", "list", "lower",
        "map", "max", "min", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select",
        "selectattr", "sort", "string", "striptags", "sum", "title", "tojson", "trim", "truncate", "unique",
        "upper", "urlencode", "wordcount",
    }
)  # fmt: skip
# String methods whose arguments size the result (padding, format widths, repeated replacement, joins).
_UNSAFE_STR_METHODS = frozenset(
    {"format", "format_map", "center", "ljust", "rjust", "zfill", "expandtabs", "replace", "join"}
)
FORBIDDEN_TAGS: dict[type[nodes.Node], str] = {
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Include: "{% include %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
}
FORBIDDEN_NAMES = frozenset({"self", "lipsum", "cycler", "joiner", "namespace", "dict"})
TEMPLATE_MARKERS = ("{{", "{%", "{#")
LOOP_BUDGET_FILTER = "loop_budget"
SOURCE_PREVIEW_CHARS = 80


class _StrictUndefined(StrictUndefined):
    """Fails on any use, naming the missing key or index and what was there instead."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        container, name = self._undefined_obj, self._undefined_name
        if self._undefined_hint or container is missing:
            return super()._undefined_message
        if isinstance(container, Mapping):
            keys = [str(key) for key in container][:20]
            return f"missing key {name!r} (available: {', '.join(keys) or 'none'})"
        if isinstance(container, list | tuple):
            return f"missing index {name!r} (length {len(container)})"
        return f"{type(container).__name__} value has no key or attribute {name!r}"


class _Sandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with JSON-first lookups and guards against operators that allocate unboundedly."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Undefined):
            # Fail on the first missing step, not on a later attribute of the placeholder.
            obj._fail_with_undefined_error()
        # JSON data first: `body.items` is the key "items", not the dict method.
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        if attribute.startswith("_"):
            # Refuse private names even when the object lacks them, so probing reads as refused, not missing.
            return self.unsafe_undefined(obj, attribute)
        return super().getattr(obj, attribute)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, str) and attr in _UNSAFE_STR_METHODS:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # `str.format` is refused by is_safe_attribute; never hand out a wrapped one.
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        return self.undefined(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not allowed",
            name=attribute,
            obj=obj,
            exc=SecurityError,
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "%" and isinstance(left, str):
        raise SecurityError("string formatting with '%' is not allowed (use filters such as round or join)")
    if operator == "*":
        _check_repeat(left, right)
        _check_repeat(right, left)
    if operator == "**" and _power_bits(left, right) > MAX_POWER_BITS:
        raise SecurityError(f"{left} ** {right} is not allowed (result larger than {MAX_POWER_BITS} bits)")


def _check_repeat(sequence: Any, times: Any) -> None:
    if not (isinstance(sequence, str | list | tuple) and isinstance(times, int)):
        return
    if len(sequence) * times > MAX_OUTPUT_CHARS:
        raise SecurityError(
            f"repeating a {type(sequence).__name__} of length {len(sequence)} {times} times"
            f" is not allowed (result larger than {MAX_OUTPUT_CHARS})"
        )


def _power_bits(base: Any, exponent: Any) -> int:
    """Roughly how many bits ``base ** exponent`` needs; 0 when it is not an integer power."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return 0
    return max(abs(base), 2).bit_length() * exponent


class LoopBudget:
    """Iterations left for the loops of one render, so nested loops cannot spin for hours."""

    def __init__(self) -> None:
        self.left = MAX_LOOP_ITERATIONS


loop_budget: ContextVar[LoopBudget] = ContextVar("aob_template_loop_budget")


def _budgeted(iterable: Any) -> Iterator[Any]:
    budget = loop_budget.get()
    for item in iterable:
        budget.left -= 1
        if budget.left < 0:
            raise SecurityError(f"more than {MAX_LOOP_ITERATIONS} loop iterations are not allowed")
        yield item


def _bounded_range(*args: int) -> range:
    span = range(*args)
    if len(span) > MAX_RANGE:
        raise SecurityError(f"range of {len(span)} items is not allowed (at most {MAX_RANGE})")
    return span


def _make_environment() -> _Sandbox:
    env = _Sandbox(undefined=_StrictUndefined, autoescape=False, finalize=_finalize)
    join, replace = env.filters["join"], env.filters["replace"]

    @pass_eval_context
    def bounded_join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None) -> Any:
        items = list(value)
        if len(d) * len(items) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"joining {len(items)} items with a {len(d)}-character separator is not allowed")
        return join(eval_ctx, items, d, attribute)

    @pass_eval_context
    def bounded_replace(eval_ctx: EvalContext, s: str, old: str, new: str, count: int | None = None) -> Any:
        text = str(s)
        occurrences = text.count(str(old)) if count is None else min(count, text.count(str(old)))
        if len(text) + occurrences * len(str(new)) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"replace producing more than {MAX_OUTPUT_CHARS} characters is not allowed")
        return replace(eval_ctx, s, old, new, count)

    env.filters = {name: env.filters[name] for name in _ALLOWED_FILTERS if name in env.filters}
    env.filters.update({"join": bounded_join, "replace": bounded_replace, LOOP_BUDGET_FILTER: _budgeted})
    env.globals = {"range": _bounded_range, "null": None}
    return env


def _finalize(value: Any) -> Any:
    """Print JSON-shaped values as JSON (``true``, ``null``, ``{"a": 1}``) rather than as Python reprs."""
    if value is None or isinstance(value, bool | dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


SANDBOX = _make_environment()
