"""Safe templates: typed results, compatibility references, conditions, syntax checks and the sandbox."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import TemplateError
from common.workflow.templates import (
    TemplateScope,
    check_condition_syntax,
    check_syntax,
    evaluate_condition,
    referenced_nodes,
    render_value,
)


@pytest.fixture
def scope() -> TemplateScope:
    return TemplateScope(
        inputs={"city": "Paris", "count": 3, "tags": ["a", "b"], "items": "the key, not dict.items"},
        nodes={
            "fetch": {"status": 200, "body": {"items": [{"id": 7, "name": "x"}, {"id": 8}], "ok": True}},
            "score-model": {"score": 91.5},
        },
        extra={"item": {"sku": "k1"}, "index": 2},
    )


# -- typed single expressions --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.city }}", "Paris"),
        ("{{ inputs.count }}", 3),
        ("  {{ inputs.count * 2 }}\n", 6),
        ("{{ inputs.tags }}", ["a", "b"]),
        ("{{ nodes.fetch.output.body }}", {"items": [{"id": 7, "name": "x"}, {"id": 8}], "ok": True}),
        ("{{ nodes.fetch.output.body.items[0] }}", {"id": 7, "name": "x"}),
        ("{{ nodes.fetch.output.body.ok }}", True),
        ("{{ nodes['score-model'].output.score }}", 91.5),
        ("{{ none }}", None),
        ("{{ null }}", None),
        ("{{ inputs.items }}", "the key, not dict.items"),
        ("{{ inputs.tags | map('upper') }}", ["A", "B"]),
        ("{{ inputs.tags | length }}", 2),
        ("{{ {'n': inputs.count, 'first': inputs.tags | first} }}", {"n": 3, "first": "a"}),
        ("{{ item.sku }}", "k1"),
        ("{{ index + 1 }}", 3),
        ("{{ inputs.missing | default('fallback') }}", "fallback"),
        ("{{ nodes.fetch.output.body | tojson }}", '{"items": [{"id": 7, "name": "x"}, {"id": 8}], "ok": true}'),
    ],
)
def test_single_expression_keeps_its_type(scope: TemplateScope, template: str, expected: Any) -> None:
    assert render_value(template, scope) == expected


def test_typed_result_is_a_copy_of_the_output(scope: TemplateScope) -> None:
    body = render_value("{{ nodes.fetch.output.body }}", scope)
    body["items"].clear()
    assert scope.nodes["fetch"]["body"]["items"]


# -- string interpolation ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Weather in {{ inputs.city }}", "Weather in Paris"),
        ("{{ inputs.city }}-{{ inputs.count }}", "Paris-3"),
        ("ok={{ nodes.fetch.output.body.ok }}", "ok=true"),
        ("body={{ nodes.fetch.output.body.items[1] }}", 'body={"id": 8}'),
        ("nothing={{ null }}", "nothing=null"),
        ("{% if inputs.count > 2 %}many{% else %}few{% endif %}", "many"),
        ("{% for tag in inputs.tags %}{{ loop.index }}:{{ tag }};{% endfor %}", "1:a;2:b;"),
        ("{{ inputs.tags | join(', ') | upper }}", "A, B"),
        ("{{ 2.567 | round(1) }} {{ '12' | int + 1 }}", "2.6 13"),
        ("plain text with $ and { braces }", "plain text with $ and { braces }"),
    ],
)
def test_strings_interpolate(scope: TemplateScope, template: str, expected: str) -> None:
    assert render_value(template, scope) == expected


def test_nested_dicts_and_lists_are_walked(scope: TemplateScope) -> None:
    config = {
        "url": "https://api.example.com/{{ inputs.city | lower }}",
        "headers": {"X-Count": "{{ inputs.count }}", "Accept": "application/json"},
        "body": [{"id": "{{ nodes.fetch.output.body.items[0].id }}"}, 5, None, True],
    }
    assert render_value(config, scope) == {
        "url": "https://api.example.com/paris",
        "headers": {"X-Count": 3, "Accept": "application/json"},
        "body": [{"id": 7}, 5, None, True],
    }


# -- compatibility references --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$nodes.fetch.body.items", [{"id": 7, "name": "x"}, {"id": 8}]),
        ("$nodes.fetch.body.items[1].id", 8),
        ("$nodes.fetch", {"status": 200, "body": {"items": [{"id": 7, "name": "x"}, {"id": 8}], "ok": True}}),
        ("  $nodes.score-model.score ", 91.5),
        ("$inputs.city", "Paris"),
        ("$inputs.tags[0]", "a"),
        ("$inputs.items", "the key, not dict.items"),
        ("$inputs", {"city": "Paris", "count": 3, "tags": ["a", "b"], "items": "the key, not dict.items"}),
        ("id=${$nodes.fetch.body.items[0].id}, city=${$inputs.city}", "id=7, city=Paris"),
        ("status ${ $nodes.fetch.status }", "status 200"),
        ("costs $inputs.count dollars", "costs $inputs.count dollars"),
    ],
)
def test_compatibility_references(scope: TemplateScope, template: str, expected: Any) -> None:
    assert render_value(template, scope) == expected


# -- missing names -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_parts"),
    [
        ("{{ inputs.cty }}", ["missing key 'cty'", "available: city", "'{{ inputs.cty }}'"]),
        ({"url": "{{ nodes.fetchh.output }}"}, ["url: ", "missing key 'fetchh'", "available: fetch, score-model"]),
        ("$nodes.fetch.body.items[5]", ["missing index 5 (length 2)", "'$nodes.fetch.body.items[5]'"]),
        ({"a": ["x", "${$inputs.nope}"]}, ["a[1]: ", "missing key 'nope'"]),
        ("{{ unknown_name }}", ["'unknown_name' is undefined"]),
        ("Hello {{ inputs.city.nope }}", ["has no key or attribute 'nope'"]),
        ({"h": {"X-Y.z": "{{ nodes.other.output }}"}}, ['h["X-Y.z"]: ', "missing key 'other'"]),
    ],
)
def test_missing_names_raise_template_error(scope: TemplateScope, value: Any, expected_parts: list[str]) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value(value, scope)
    for part in expected_parts:
        assert part in caught.value.message


def test_non_json_result_is_refused(scope: TemplateScope) -> None:
    with pytest.raises(TemplateError, match="expected a JSON value"):
        render_value("{{ inputs.city.upper }}", scope)


# -- conditions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "output", "expected"),
    [
        ("$.approved == true", {"approved": True}, True),
        ("$.approved == true", {"approved": False}, False),
        ("$.approved == True", {"approved": True}, True),
        ("output.score >= 80", {"score": 91}, True),
        ("output.score >= 80", {"score": 79}, False),
        ("$.error == null", {"error": None}, True),
        ("$.error != none", {"error": None}, False),
        ("$.status == 'ok' and $.count > 1", {"status": "ok", "count": 2}, True),
        ("not $.done", {"done": False}, True),
        ("$.note == '$.note'", {"note": "$.note"}, True),
        ('$.note == "see $.x"', {"note": "see $.x"}, True),
        ("$[0] == 'first'", ["first"], True),
        ("'vip' in $.tags", {"tags": ["vip"]}, True),
        ("$.items | length > 1", {"items": [1, 2]}, True),
        ("output", [], False),
    ],
)
def test_conditions(expr: str, output: Any, expected: bool) -> None:
    assert evaluate_condition(expr, output) is expected


def test_conditions_see_inputs_and_nodes(scope: TemplateScope) -> None:
    assert evaluate_condition("inputs.count == 3 and $.ok", {"ok": True}, scope)
    assert evaluate_condition("nodes.fetch.output.status == 200", None, scope)
    assert evaluate_condition("$nodes.fetch.body.items | length == 2", None, scope)
    assert evaluate_condition("$inputs.city == 'Paris'", None, scope)


def test_condition_on_a_missing_field_names_it() -> None:
    with pytest.raises(TemplateError, match=r"missing key 'aproved' \(available: approved\) in '\$.aproved == true'"):
        evaluate_condition("$.aproved == true", {"approved": True})


def test_condition_syntax_error_raises() -> None:
    with pytest.raises(TemplateError, match="unexpected"):
        evaluate_condition("$.a == == 1", {"a": 1})


# -- syntax checks -------------------------------------------------------------------------------------------------


def test_check_syntax_reports_every_error_with_its_path() -> None:
    value = {
        "url": "{{ inputs.x }",
        "ok": "{{ inputs.x }}",
        "headers": {"A": ["fine", "{% for %}"]},
        "plain": "no templates {here}",
        "bad": "{% include 'other' %}",
    }
    errors = check_syntax(value)
    assert errors[0] == "url: unexpected '}'"
    assert errors[1].startswith("headers.A[1]: ")
    assert errors[2] == "bad: {% include %} is not allowed in templates"
    assert len(errors) == 3


def test_check_syntax_of_valid_values_is_empty() -> None:
    assert check_syntax({"a": "{{ inputs.x }}", "b": ["$nodes.n.y", 1, None], "c": "${$inputs.z}"}) == []
    assert check_syntax("{{ x }") == ["unexpected '}'"]


def test_check_syntax_names_lines_of_multiline_templates() -> None:
    assert check_syntax({"t": "line one\n{{ x + }}"}) == ["t: unexpected 'end of print statement' (line 2)"]


def test_check_condition_syntax() -> None:
    assert check_condition_syntax("$.approved == true") is None
    assert check_condition_syntax("output.a > 1 and inputs.b") is None
    assert check_condition_syntax("$.a ==") == "unexpected 'end of template'"
    assert check_condition_syntax("$.a == 1 2") == "unexpected text after the expression"
    assert check_condition_syntax("self") == "the name 'self' is not allowed in templates"


# -- referenced nodes ----------------------------------------------------------------------------------------------


def test_referenced_nodes() -> None:
    value = {
        "a": "{{ nodes.fetch.output.x }} and {{ nodes['score-model'].output }}",
        "b": ["$nodes.zz.q", "x ${$nodes.yy.k}", "{% for i in nodes.loopy.output %}{% endfor %}"],
        "c": "{{ inputs.nodes }} nodes.plain_text",
        "d": "{{ broken",
    }
    assert referenced_nodes(value) == {"fetch", "score-model", "zz", "yy", "loopy"}
    assert referenced_nodes("no templates") == set()


# -- sandbox -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ inputs.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ inputs.get.__globals__ }}",
        "{{ inputs.city | attr('__class__') }}",
        "{{ inputs.tags | map(attribute='__class__') | list }}",
        "{{ inputs['__class__'] }}",
        "{% import 'os' as os %}",
        "{% from 'x' import y %}",
        "{% include 'secrets.txt' %}",
        "{% extends 'base' %}",
        "{% macro f() %}{% endmacro %}",
        "{{ self }}",
        "{{ self._TemplateReference__context }}",
        "{{ lipsum() }}",
        "{{ joiner() }}",
        "{{ namespace(a=1) }}",
        "{{ dict.mro() }}",
        "{{ range(10**9) | list }}",
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{% for x in [1, 2] recursive %}{{ loop([1, 2]) }}{% endfor %}",
        "{{ 'x' * 10**7 }}",
        "{{ [0] * 10**8 }}",
        "{{ 2 ** 100000000 }}",
        "{{ '%099999999d' % 1 }}",
        "{{ '{:>99999999}'.format(1) }}",
        "{{ 'x'.center(10**9) }}",
        "{{ 'x' | center(10**9) }}",
        "{{ ('x' * 1000) | replace('x', 'y' * 100000) }}",
        "{{ range(10000) | join('x' * 1000) }}",
        "{% for i in range(10000) %}{{ 'x' * 2000 }}{% endfor %}",
        "{{ inputs.pop('city') }}",
        "{{ inputs.tags.append(1) }}",
    ],
)
def test_sandbox_refuses_escapes_and_unbounded_work(scope: TemplateScope, template: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value({"field": template}, scope)
    message = caught.value.message.lower()
    assert message.startswith("field: ")
    assert any(words in message for words in ("not allowed", "budget exceeded", "no filter named"))


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ ''.__class__ }}", "access to attribute '__class__' of a 'str' object is not allowed"),
        ("{{ inputs.__class__.__mro__ }}", "access to attribute '__class__' of a 'dict' object is not allowed"),
        ("{{ cycler.__init__.__globals__ }}", "the name 'cycler' is not allowed"),
        ("{% import 'os' as os %}", "{% import %} is not allowed"),
        ("{% include 'x' %}", "{% include %} is not allowed"),
        ("{{ self }}", "the name 'self' is not allowed"),
        ("{{ lipsum() }}", "the name 'lipsum' is not allowed"),
        ("{{ range(10**9) }}", "range of 1000000000 items is not allowed"),
        ("{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}", "more than 100000 steps"),
        ("{{ 'x' * 10**7 }}", "a str of length 1 repeated 10000000 times would be larger than 1000000 characters"),
        ("{{ inputs.pop('city') }}", "access to attribute 'pop' of a 'dict' object is not allowed"),
        ("{% for i in range(10000) %}{{ 'x' * 2000 }}{% endfor %}", "output larger than 16000000 characters"),
    ],
)
def test_sandbox_messages_say_why(scope: TemplateScope, template: str, reason: str) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value(template, scope)
    assert reason in caught.value.message


@pytest.mark.parametrize(
    "expr",
    ["$.__class__", "output.__class__.__base__", "cycler.__init__.__globals__", "self", "range(10**9) | length > 0"],
)
def test_sandbox_applies_to_conditions(expr: str) -> None:
    with pytest.raises(TemplateError, match="not allowed"):
        evaluate_condition(expr, {"a": 1})


def test_scope_is_not_modified(scope: TemplateScope) -> None:
    with pytest.raises(TemplateError):
        render_value("{% set _ = inputs.update({'city': 'Rome'}) %}", scope)
    assert scope.inputs["city"] == "Paris"
