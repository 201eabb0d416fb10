"""The sandbox templates run in: Jinja's immutable sandbox, an allowlist of names and a budget on every operation.

Operators, method calls and filters are checked before they build a result (see ``_template_checks``) and their
results measured; loops, ``~`` and output go through internal filters that ``budget_ast`` puts into the parsed
template. Their names hold a ``:``, which no template can spell.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import chain
from typing import Any

from jinja2 import nodes, pass_context, pass_environment
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing
from jinja2.visitor import NodeTransformer

from common.workflow._template_allowlist import FILTERS, SELECTING_FILTERS, TESTS, allowed_attributes
from common.workflow._template_budget import Budget, current_budget
from common.workflow._template_checks import check_binop, check_filter, check_method, total_size

MAX_RANGE = 10_000

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
SOURCE_PREVIEW_CHARS = 80

_ITERATE = "aob:iterate"
_CONCAT = "aob:concat"
_EMIT = "aob:emit"
# Method results that are data already there (a JSON object's values, an argument of loop.cycle): not measured.
_SELECTING_METHODS = frozenset({"get", "items", "keys", "values", "cycle"})


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
    """Jinja's immutable sandbox with JSON-first lookups, allowlisted attributes and budgeted operations."""

    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    intercepted_unops = frozenset({"+", "-"})

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
        return attr in allowed_attributes(obj)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # `str.format` is not on the allowlist; never hand out a wrapped one.
        return None

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        return self.undefined(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is not allowed",
            name=attribute,
            obj=obj,
            exc=SecurityError,
        )

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        budget.tick()
        sized = check_binop(budget, operator, left, right)
        result = super().call_binop(context, operator, left, right)
        return result if sized else _checked(budget, result, f"the value of {operator}")

    def call_unop(self, context: Context, operator: str, arg: Any) -> Any:
        current_budget().tick()
        return super().call_unop(context, operator, arg)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        args = check_method(budget, __obj, args)
        result = super().call(__context, __obj, *args, **kwargs)
        name = getattr(__obj, "__name__", "")
        if name in _SELECTING_METHODS:
            return result
        return _checked(budget, result, f"the value of {name or 'the call'}()")


def budget_ast(node: nodes.Node) -> None:
    """Route ``node``'s loops, ``~`` and output through the budget (in place)."""
    _Budgeted().visit(node)


class _Budgeted(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _internal(_ITERATE, node.iter)  # type: ignore[arg-type]  # For.iter is typed as a Node
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _internal(_CONCAT, nodes.Tuple(node.nodes, "load", lineno=node.lineno))

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        node.nodes = [_internal(_EMIT, child) for child in node.nodes]
        return node


def _internal(name: str, node: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


def _checked(budget: Budget, result: Any, what: str) -> Any:
    """``result`` measured against the value limit; lazy results tick a step per item instead."""
    if isinstance(result, Iterator):
        return budget.iterate(result)
    budget.measure(result, what)
    return result


@pass_context
def _iterate(context: Context, items: Iterable[Any]) -> Iterator[Any]:
    return current_budget().iterate(items)


@pass_context
def _concat(context: Context, parts: tuple[Any, ...]) -> str:
    budget = current_budget()
    budget.tick()
    budget.allow(total_size(budget, parts), "the value of ~")
    return "".join(map(str, parts))


@pass_context
def _emit(context: Context, value: Any) -> str:
    """Output text for ``value``, counted against the output limit; JSON-shaped values are written as JSON."""
    budget = current_budget()
    budget.emit(value)
    if value is None or isinstance(value, bool | dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@pass_environment
def _sum(environment: Environment, iterable: Iterable[Any], attribute: str | int | None = None, start: Any = 0) -> Any:
    """Jinja's ``sum``, but lists and tuples are joined once (``sum`` adds them pairwise, quadratic in time)."""
    budget = current_budget()
    items = budget.materialize(iterable)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(item) for item in items]
    if not isinstance(start, list | tuple):
        return sum(items, start)
    budget.allow(total_size(budget, [start, *items]), "the value of the sum filter")
    for item in items:
        if not isinstance(item, type(start)):
            raise TypeError(f"can only add {type(start).__name__} to {type(start).__name__}, not {type(item).__name__}")
    return type(start)(chain(start, *items))


def _guard_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    passes = _passed(func)

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if name in SELECTING_FILTERS:
            value = check_filter(budget, name, value, args, kwargs)
            return func(*passes(context), value, *args, **kwargs)
        budget.measure(value, f"the input of the {name} filter")
        value = check_filter(budget, name, value, args, kwargs)
        return _checked(budget, func(*passes(context), value, *args, **kwargs), f"the value of the {name} filter")

    return guarded


def _guard_test(func: Callable[..., Any]) -> Callable[..., Any]:
    passes = _passed(func)

    @pass_context
    def guarded(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        current_budget().tick()
        return func(*passes(context), value, *args, **kwargs)

    return guarded


def _passed(func: Callable[..., Any]) -> Callable[[Context], tuple[Any, ...]]:
    """What Jinja passes before the value to ``func``, by its ``pass_*`` decorator."""
    kind = getattr(getattr(func, "jinja_pass_arg", None), "name", None)
    if kind == "context":
        return lambda context: (context,)
    if kind == "eval_context":
        return lambda context: (context.eval_ctx,)
    if kind == "environment":
        return lambda context: (context.environment,)
    return lambda context: ()


def _bounded_range(*args: int) -> range:
    span = range(*args)
    if len(span) > MAX_RANGE:
        raise SecurityError(f"range of {len(span)} items is not allowed (at most {MAX_RANGE})")
    return span


def _make_environment() -> _Sandbox:
    env = _Sandbox(undefined=_StrictUndefined, autoescape=False)
    builtin = {**env.filters, "sum": _sum}
    env.filters = {name: _guard_filter(name, builtin[name]) for name in FILTERS}
    env.filters.update({_ITERATE: _iterate, _CONCAT: _concat, _EMIT: _emit})
    tests: dict[str, Any] = env.tests
    env.tests = {name: _guard_test(tests[name]) for name in TESTS}
    env.globals = {"range": _bounded_range, "null": None}
    return env


SANDBOX = _make_environment()
