"""Translation of the original platform's reference syntaxes (``$nodes.x.y``, ``${...}``, ``$.``) into Jinja source."""

from __future__ import annotations

import re

# A path after a root: `.key` (keys may hold hyphens, as JSON keys often do), `[0]`, `["key"]` or `['key']`.
_SEGMENT = r"""\.[A-Za-z0-9_][\w-]*|\[\d+\]|\["[^"]*"\]|\['[^']*'\]"""
_REFERENCE = rf"\$(?:nodes\.(?P<node>[A-Za-z0-9_][\w-]*)|(?P<inputs>inputs))(?P<path>(?:{_SEGMENT})*)"

_WHOLE_REFERENCE = re.compile(rf"\s*{_REFERENCE}\s*")
_INTERPOLATION = re.compile(rf"\$\{{\s*{_REFERENCE}\s*\}}")
_SEGMENTS = re.compile(_SEGMENT)

# In expressions only the root is rewritten; what follows stays Jinja (so `-` after it is still subtraction).
_EXPRESSION_ROOT = re.compile(r"\$nodes\.(?P<node>[A-Za-z0-9_]\w*)|\$inputs\b|\$(?=[.\[])")
_STRING_LITERAL = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""", re.DOTALL)


def may_hold_reference(text: str) -> bool:
    """Whether ``text`` may use a compatibility reference (cheap pre-check before the regexes)."""
    return "$nodes." in text or "$inputs" in text


def translate_template(text: str) -> str:
    """Jinja source for a template string: a whole ``$nodes.…`` becomes one ``{{ }}``, each ``${$…}`` too."""
    whole = _WHOLE_REFERENCE.fullmatch(text)
    if whole is not None:
        return "{{ " + _reference_expression(whole) + " }}"
    return _INTERPOLATION.sub(lambda match: "{{ " + _reference_expression(match) + " }}", text)


def translate_condition(expr: str) -> str:
    """Jinja source for an edge condition: ``$.`` means ``output.``, ``$nodes.x`` the output of node x.

    String literals are left as written, so ``output.note == '$.x'`` compares with the text ``$.x``.
    """
    if "$" not in expr:
        return expr
    parts: list[str] = []
    position = 0
    for literal in _STRING_LITERAL.finditer(expr):
        parts.append(_EXPRESSION_ROOT.sub(_expression_root, expr[position : literal.start()]))
        parts.append(literal.group())
        position = literal.end()
    parts.append(_EXPRESSION_ROOT.sub(_expression_root, expr[position:]))
    return "".join(parts)


def _reference_expression(match: re.Match[str]) -> str:
    """A subscript-only Jinja expression for one reference, so every path step is a key or index lookup."""
    node = match.group("node")
    root = f'nodes["{node}"]["output"]' if node is not None else "inputs"
    steps = []
    for segment in _SEGMENTS.findall(match.group("path")):
        steps.append(f'["{segment[1:]}"]' if segment.startswith(".") else segment)
    return root + "".join(steps)


def _expression_root(match: re.Match[str]) -> str:
    node = match.group("node")
    if node is not None:
        return f'nodes["{node}"].output'
    return "inputs" if match.group().startswith("$inputs") else "output"
