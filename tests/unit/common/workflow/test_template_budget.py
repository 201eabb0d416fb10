"""The template budget and allowlists: what is refused and how it is named, what stays allowed, which limits apply."""

from __future__ import annotations

import json
from typing import Any

import pytest

from common.errors import TemplateError
from common.settings import TemplateFields
from common.workflow._template_budget import measure
from common.workflow.templates import TemplateScope, check_syntax, evaluate_condition, render_value


@pytest.fixture
def scope() -> TemplateScope:
    return TemplateScope(inputs={"name": "Ada", "price": 3.14159, "tags": ["a", "b", "c"]}, nodes={})


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ inputs.name.ljust(5, '.') }}", "Ada.."),
        ("{{ inputs.name.center(7) }}", "  Ada  "),
        ("{{ inputs.name | center(5) }}", " Ada "),
        ("{{ inputs.name.zfill(5) }}", "00Ada"),
        ("{{ '%.2f' % inputs.price }}", "3.14"),
        ("{{ '%5s|' % inputs.name }}", "  Ada|"),
        ("{{ '%s-%s' | format(1, 2) }}", "1-2"),
        ("{{ 'a,b'.split(',') }}", ["a", "b"]),
        ("{{ ', '.join(inputs.tags) }}", "a, b, c"),
        ("{{ inputs.name.replace('a', 'aa') }}", "Adaa"),
        ("{{ [[1], [2, 3]] | sum(start=[0]) }}", [0, 1, 2, 3]),
        ("{{ inputs.tags | map('upper') | join('') }}", "ABC"),
        ("{{ inputs.tags | tojson(indent=2) }}", json.dumps(["a", "b", "c"], indent=2)),
        ("{{ 'x' * 3 ~ 3 * 'y' }}", "xxxyyy"),
        ("{{ 2 ** 10 }}", 1024),
        ("{% for t in inputs.tags %}{{ loop.index }}{{ t }}{% endfor %}", "1a2b3c"),
    ],
)
def test_allowed_methods_filters_and_operators_work(scope: TemplateScope, template: str, expected: Any) -> None:
    assert render_value(template, scope) == expected


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ inputs.name.encode() }}", "access to attribute 'encode' of a 'str' object is not allowed"),
        ("{{ inputs.name.format(1) }}", "access to attribute 'format' of a 'str' object is not allowed"),
        ("{{ inputs.name.translate({}) }}", "access to attribute 'translate' of a 'str' object is not allowed"),
        ("{{ inputs.name.expandtabs(99) }}", "access to attribute 'expandtabs' of a 'str' object is not allowed"),
        ("{{ inputs.price.real }}", "access to attribute 'real' of a 'float' object is not allowed"),
        ("{{ inputs.tags.copy() }}", "access to attribute 'copy' of a 'list' object is not allowed"),
        ("{{ inputs.tags | batch(2) | list }}", "No filter named 'batch'"),
        ("{{ inputs.name | wordwrap(2) }}", "No filter named 'wordwrap'"),
        ("{{ inputs.name is callable }}", "No test named 'callable'"),
    ],
)
def test_anything_not_allowlisted_is_refused_by_name(scope: TemplateScope, template: str, named: str) -> None:
    with pytest.raises(TemplateError, match=r"not allowed|No filter|No test") as caught:
        render_value(template, scope)
    assert named in caught.value.message


def test_unknown_filters_are_refused_when_the_definition_is_checked() -> None:
    assert check_syntax({"url": "{{ inputs.x | indent(4) }}"}) == ["url: No filter named 'indent'."]


@pytest.mark.parametrize(
    ("limits", "template", "reason"),
    [
        (TemplateFields(template_max_steps=50), "{% for i in range(100) %}{% endfor %}", "took more than 50 steps"),
        (TemplateFields(template_max_value_chars=10), "{{ 'x' * 11 }}", "larger than 10 characters"),
        (TemplateFields(template_max_output_chars=10), "{{ inputs.name }}{{ inputs.name * 3 }}", "output larger"),
        (TemplateFields(template_max_eval_s=1e-9), "{% for i in range(1000) %}{% endfor %}", "s of CPU time"),
    ],
)
def test_limits_come_from_the_scope(limits: TemplateFields, template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match="template budget exceeded") as caught:
        render_value(template, TemplateScope(inputs={"name": "Ada"}, nodes={}, limits=limits))
    assert reason in caught.value.message


def test_the_budget_spans_one_whole_evaluation() -> None:
    scope = TemplateScope(inputs={}, nodes={}, limits=TemplateFields(template_max_steps=100))
    loop = "{% for i in range(60) %}{% endfor %}"
    assert render_value({"a": loop}, scope) == {"a": ""}
    with pytest.raises(TemplateError, match=r"^b: template budget exceeded: took more than 100 steps"):
        render_value({"a": loop, "b": loop, "c": loop}, scope)
    assert render_value({"a": loop}, scope) == {"a": ""}  # a new evaluation, a new budget


def test_conditions_have_a_budget() -> None:
    limits = TemplateFields(template_max_steps=20)
    with pytest.raises(TemplateError, match="took more than 20 steps"):
        evaluate_condition(
            "output.items | map('string') | list | length > 0",
            {"items": list(range(100))},
            TemplateScope(inputs={}, nodes={}, limits=limits),
        )


def test_large_upstream_data_passes_through_but_is_not_amplified() -> None:
    body = "x" * 3_000_000  # larger than one value may be built, smaller than an evaluation's output
    scope = TemplateScope(inputs={}, nodes={"fetch": {"body": body, "items": [body]}})
    assert render_value("{{ nodes.fetch.output.body }}", scope) == body
    assert render_value("Body: {{ nodes.fetch.output.body }}", scope) == "Body: " + body
    assert render_value("{{ nodes.fetch.output.items | first | length }}", scope) == 3_000_000
    with pytest.raises(TemplateError, match="larger than 1000000 characters"):
        render_value("{{ nodes.fetch.output.body | upper }}", scope)
    with pytest.raises(TemplateError, match="output larger than 16000000 characters"):
        render_value("{{ [" + ", ".join(["nodes.fetch.output.body"] * 6) + "] }}", scope)


def test_measure_is_close_to_json_and_stops_past_its_limit() -> None:
    value = {"a": [1, "two", None, 2.5, [True]], "b": {"c": "d"}}
    size, _ = measure(value, 10**9)
    assert len(json.dumps(value)) <= size <= 2 * len(json.dumps(value))
    shared = ["x" * 1000] * 1_000_000
    size, visited = measure(shared, 10_000)
    assert size > 10_000 and visited < 20
    nested: list[Any] = []
    for _ in range(50):
        nested = [nested]
    size, _ = measure(nested, 10**9, indent=100)
    assert size >= len(json.dumps(nested, indent=100))
