"""Safe templates and edge conditions: Jinja's immutable sandbox, JSON-typed results, bounded work and output.

Templates see ``inputs`` (run inputs), ``nodes.<id>.output`` (upstream outputs) and any extra names;
conditions also see ``output`` (the source node's output, alias ``$.``). The original platform's
``$nodes.<id>.<path>``, ``${$nodes.<id>.<path>}`` and ``$inputs.<path>`` references are accepted too.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, UndefinedError, nodes
from jinja2.environment import Template, TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.parser import Parser
from jinja2.runtime import Undefined

from common.errors import TemplateError
from common.settings import TemplateFields
from common.workflow._template_budget import TemplateLimits as TemplateLimits
from common.workflow._template_budget import current_budget, evaluation
from common.workflow._template_compat import may_hold_reference, translate_condition, translate_template
from common.workflow._template_sandbox import (
    FORBIDDEN_NAMES,
    FORBIDDEN_TAGS,
    SANDBOX,
    SOURCE_PREVIEW_CHARS,
    TEMPLATE_MARKERS,
    budget_ast,
)


@dataclass
class TemplateScope:
    """What templates can see: run ``inputs``, upstream ``nodes`` (id -> output) and ``extra`` top-level names;
    ``limits`` bound each evaluation (the process's ``template_*`` settings)."""

    inputs: dict[str, Any]
    nodes: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    limits: TemplateLimits = field(default_factory=TemplateFields)


def render_value(value: Any, scope: TemplateScope) -> Any:
    """Render every template string inside ``value`` (dicts and lists walked); raises ``TemplateError``.

    A string that is exactly one ``{{ expr }}`` (or one ``$nodes…`` reference) keeps the value's JSON type.
    The whole of ``value`` is one evaluation under ``scope.limits``.
    """
    with evaluation(scope.limits):
        return _render(value, _template_vars(scope), "")


def evaluate_condition(expr: str, output: Any, scope: TemplateScope | None = None) -> bool:
    """Truth of an edge ``when`` expression over the source node's ``output``; raises ``TemplateError``."""
    variables = _template_vars(scope) if scope is not None else {}
    variables["output"] = output
    try:
        with evaluation(scope.limits if scope is not None else TemplateFields()):
            result = _compile_condition(expr)(variables)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return bool(result)
    except Exception as exc:
        raise _evaluation_error(exc, "", expr) from exc


def check_syntax(value: Any) -> list[str]:
    """Syntax errors of every template string inside ``value``, each prefixed with its path (``url: …``)."""
    errors: list[str] = []
    for path, text in _template_strings(value, ""):
        try:
            _compile_template(text)
        except TemplateError as exc:
            errors.append(_located(path, exc.message))
    return errors


def check_condition_syntax(expr: str) -> str | None:
    """The syntax error of an edge condition, or None when it compiles."""
    try:
        _compile_condition(expr)
    except TemplateError as exc:
        return exc.message
    return None


def has_templates(value: Any) -> bool:
    """Whether any string inside ``value`` is a template; rendering a value without one returns it unchanged."""
    return next(_template_strings(value, ""), None) is not None


def referenced_nodes(value: Any) -> set[str]:
    """Ids of nodes that templates inside ``value`` refer to by name (``nodes.x``, ``nodes['x']``, ``$nodes.x``).

    Templates that do not compile refer to nothing (they fail when rendered); dynamic lookups are not seen.
    """
    found: set[str] = set()
    for _, text in _template_strings(value, ""):
        try:
            found |= _compile_template(text).node_ids
        except TemplateError:
            continue
    return found


@dataclass(frozen=True)
class _Compiled:
    """A compiled template string: ``evaluate(variables)`` gives its value; ``node_ids`` are the nodes it names."""

    evaluate: Callable[[dict[str, Any]], Any]
    node_ids: frozenset[str]


@functools.lru_cache(maxsize=4096)
def _compile_template(text: str) -> _Compiled:
    source = translate_template(text) if may_hold_reference(text) else text
    try:
        ast = SANDBOX.parse(source)
        _guard(ast)
        single = _single_expression(ast)
        if single is not None:
            expression = _expression(single)
            return _Compiled(lambda variables: _typed_result(expression(variables)), _node_ids(ast))
        budget_ast(ast)
        ast.set_environment(SANDBOX)
        return _Compiled(functools.partial(_render_text, SANDBOX.from_string(ast)), _node_ids(ast))
    except (TemplateSyntaxError, SecurityError) as exc:
        raise TemplateError(_syntax_message(exc, source)) from exc


@functools.lru_cache(maxsize=4096)
def _compile_condition(expr: str) -> TemplateExpression:
    source = translate_condition(expr)
    try:
        parser = Parser(SANDBOX, source, state="variable")
        node = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError("unexpected text after the expression", parser.stream.current.lineno)
        _guard(node)
        return _expression(node)
    except (TemplateSyntaxError, SecurityError) as exc:
        raise TemplateError(_syntax_message(exc, source)) from exc


def _guard(ast: nodes.Node) -> None:
    """Refuse template features that reach outside the data: imports, macros, ``self``, removed globals."""
    for node in (ast, *ast.find_all(nodes.Node)):
        tag = FORBIDDEN_TAGS.get(type(node))
        if tag is not None:
            raise SecurityError(f"{tag} is not allowed in templates")
        if isinstance(node, nodes.For) and node.recursive:
            raise SecurityError("recursive loops are not allowed in templates")
        if isinstance(node, nodes.Name) and node.name in FORBIDDEN_NAMES:
            raise SecurityError(f"the name {node.name!r} is not allowed in templates")


def _single_expression(ast: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is one ``{{ }}`` with only whitespace around it, else None."""
    if len(ast.body) != 1 or not isinstance(ast.body[0], nodes.Output):
        return None
    found: list[nodes.Expr] = []
    for part in ast.body[0].nodes:
        if isinstance(part, nodes.TemplateData):
            if part.data.strip():
                return None
        else:
            found.append(part)
    return found[0] if len(found) == 1 else None


def _expression(node: nodes.Expr) -> TemplateExpression:
    # The same construction as Environment.compile_expression, from an already checked AST.
    budget_ast(node)
    body = nodes.Template([nodes.Assign(nodes.Name("result", "store"), node, lineno=1)], lineno=1)
    body.set_environment(SANDBOX)
    return TemplateExpression(SANDBOX.from_string(body), undefined_to_none=False)


def _node_ids(ast: nodes.Template) -> frozenset[str]:
    ids = {node.attr for node in ast.find_all(nodes.Getattr) if _is_nodes_name(node.node)}
    for item in ast.find_all(nodes.Getitem):
        if _is_nodes_name(item.node) and isinstance(item.arg, nodes.Const) and isinstance(item.arg.value, str):
            ids.add(item.arg.value)
    return frozenset(ids)


def _is_nodes_name(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "nodes"


class _NodeOutputs(Mapping[str, dict[str, Any]]):
    """``nodes`` as templates see it (``nodes.<id>.output``), built lazily: conditions run on the hot path."""

    def __init__(self, outputs: dict[str, Any]) -> None:
        self._outputs = outputs

    def __getitem__(self, node_id: str) -> dict[str, Any]:
        return {"output": self._outputs[node_id]}

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)


def _template_vars(scope: TemplateScope) -> dict[str, Any]:
    return {**scope.extra, "inputs": scope.inputs, "nodes": _NodeOutputs(scope.nodes)}


def _render(value: Any, variables: dict[str, Any], path: str) -> Any:
    if isinstance(value, str):
        return _render_string(value, variables, path) if _is_template(value) else value
    if isinstance(value, dict):
        return {key: _render(item, variables, _key_path(path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, variables, f"{path}[{index}]") for index, item in enumerate(value)]
    return value


def _render_string(text: str, variables: dict[str, Any], path: str) -> Any:
    try:
        compiled = _compile_template(text)
    except TemplateError as exc:
        raise TemplateError(_located(path, exc.message)) from exc
    try:
        return compiled.evaluate(variables)
    except Exception as exc:
        raise _evaluation_error(exc, path, text) from exc


def _render_text(template: Template, variables: dict[str, Any]) -> str:
    # Every piece of output was counted against the budget as the template wrote it.
    return "".join(template.generate(variables))


def _typed_result(value: Any) -> Any:
    """The JSON value of a single expression, counted against the output limit before it is copied."""
    budget = current_budget()
    if isinstance(value, Iterator):
        value = budget.materialize(value)
    budget.emit(value)
    return _json_value(value)


def _json_value(value: Any) -> Any:
    """A plain JSON value (new containers) from an expression result; other Python objects are refused."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, str):
        return str(value)  # drops Markup from filters such as tojson
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | range | Iterator):
        return [_json_value(item) for item in value]
    raise TemplateError(
        f"the expression gave a {type(value).__name__} object, expected a JSON value"
        " (string, number, boolean, null, list or object)"
    )


def _evaluation_error(exc: Exception, path: str, text: str) -> TemplateError:
    # Templates are user code: anything they raise becomes a TemplateError naming the template.
    if isinstance(exc, TemplateError | SecurityError | UndefinedError):
        detail = exc.message if isinstance(exc, TemplateError) else str(exc)
    elif isinstance(exc, RecursionError):
        detail = "recursion too deep"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    return TemplateError(_located(path, f"{detail} in {_preview(text)}"))


def _syntax_message(exc: TemplateSyntaxError | SecurityError, source: str) -> str:
    if isinstance(exc, TemplateSyntaxError) and "\n" in source:
        return f"{exc.message} (line {exc.lineno})"
    return str(exc.message) if isinstance(exc, TemplateSyntaxError) else str(exc)


def _template_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if _is_template(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _template_strings(item, _key_path(path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_strings(item, f"{path}[{index}]")


def _is_template(text: str) -> bool:
    return any(marker in text for marker in TEMPLATE_MARKERS) or may_hold_reference(text)


_PLAIN_KEY = re.compile(r"[A-Za-z_][\w-]*")


def _key_path(path: str, key: Any) -> str:
    name = str(key)
    if not _PLAIN_KEY.fullmatch(name):
        return f"{path}[{json.dumps(name)}]"
    return f"{path}.{name}" if path else name


def _located(path: str, message: str) -> str:
    return f"{path}: {message}" if path else message


def _preview(text: str) -> str:
    shown = text if len(text) <= SOURCE_PREVIEW_CHARS else text[: SOURCE_PREVIEW_CHARS - 1] + "…"
    return repr(shown)
