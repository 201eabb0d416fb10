"""Template bombs: every one is refused within 1 s with memory bounded, and a bomb fails its edge, not the engine."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.errors import TemplateError
from common.workflow.templates import TemplateScope, evaluate_condition, render_value
from tests.support.deployment import Deployment
from tests.support.engine import Engine

# The bound: each bomb is refused within 1 s, with the evaluating process's memory bounded.
REFUSED_WITHIN_S = 1.0
PEAK_MEMORY_BYTES = 64 * 1024 * 1024
REFUSAL_WORDS = ("budget exceeded", "not allowed", "no filter named", "no test named")

# `{% set %}` inside a loop does not outlive the iteration, so self-feeding sets are written out one after another.
NESTED_900 = "{% set d = [] %}" + "{% set d = [d] %}" * 900
DOUBLED_40 = "{% set s = 'xx' %}" + "{% set s = s ~ s %}" * 40

JOIN_BOMB = "{{ (['x' * 1000000] * 200) | join }}"
BOMBS = {
    # The cases the issue lists.
    "join of repeated megabytes": JOIN_BOMB,
    "bytes repeated": "{{ 'x'.encode() * 300000000 }}",
    "bytes repeated, int first": "{{ 300000000 * 'x'.encode() }}",
    "str.center": "{{ 'x'.center(300000000) }}",
    "str.ljust": "{{ 'x'.ljust(300000000) }}",
    "str.rjust": "{{ 'x'.rjust(300000000) }}",
    "str.zfill": "{{ 'x'.zfill(300000000) }}",
    "str.translate": "{{ ('x' * 1000).translate({120: 'y' * 1000000}) }}",
    "tojson indent": NESTED_900 + "{{ d | tojson(indent=10000) }}",
    "tojson indent of deep inputs": "{{ inputs.deep | tojson(indent=10000) }}",
    "self-doubling set": DOUBLED_40 + "{{ s | length }}",
    "sum with a list start": "{{ ([[0] * 10000] * 10000) | sum(start=[]) | length }}",
    # Variants an attacker tries next.
    "nested empty loops over range": "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "nested empty loops over lists": "{% for a in [0] * 100000 %}{% for b in [0] * 100000 %}{% endfor %}{% endfor %}",
    "printf width": "{{ '%999999999s' % 1 }}",
    "printf star width": "{{ '%*s' % (999999999, 'x') }}",
    "printf precision": "{{ '%.999999999f' % 1.5 }}",
    "format filter width": "{{ '%999999999s' | format(1) }}",
    "str.format width": "{{ '{:>999999999}'.format(1) }}",
    "list repeated": "{{ [0] * 100000000 }}",
    "list repeated, int first": "{{ 100000000 * [0] }}",
    "list of megabytes repeated": "{{ (['x' * 1000000] * 100) | length }}",
    "str repeated, int first": "{{ 100000000 * 'x' }}",
    "huge power": "{{ 2 ** 100000000 }}",
    "power of a power": "{{ (7 ** 99999) ** 99999 }}",
    "self-squaring int": "{% set n = 10 ** 3000 %}" + "{% set n = n * n %}" * 30 + "{{ n > 0 }}",
    "self-doubling list": "{% set l = [1] %}" + "{% set l = l + l %}" * 40 + "{{ l | length }}",
    "self-doubling dict list": "{% set l = [{'a': 'x' * 1000}] %}" + "{% set l = l + l %}" * 40 + "{{ l | length }}",
    "wordwrap": "{{ ('x ' * 500000) | wordwrap(1) }}",
    "indent width": "{{ ('x\n' * 1000) | indent(1000000) }}",
    "center filter": "{{ 'x' | center(300000000) }}",
    "replace that multiplies": "{{ ('x' * 1000000) | replace('x', 'xxxx') }}",
    "str.replace that multiplies": "{{ ('x' * 1000000).replace('x', 'xxxx') }}",
    "batch": "{{ range(10000) | batch(1, 'x' * 1000000) | list }}",
    "slice": "{{ range(10000) | slice(10000, 'x' * 1000000) | list }}",
    "map sorting a repeated list": "{{ ([range(10000) | list] * 100000) | map('sort') | map('length') | sum }}",
    "select over a repeated list": "{{ ((range(10000) | list) * 100) | select('odd') | list | length }}",
    "huge range": "{{ range(1000000000) | list }}",
    "concat of a megabyte in a loop": "{% set s = 'x' * 999990 %}"
    "{% for i in range(9999) %}{% set t = s ~ i %}{% endfor %}",
    "output of a megabyte in a loop": "{% for i in range(10000) %}{{ 'x' * 1000000 }}{% endfor %}",
    "block set of megabytes": "{% set b %}{% for i in range(1000) %}{{ 'x' * 1000000 }}{% endfor %}{% endset %}",
    "split into many strings": "{{ ('ab,' * 1000000).split(',') | length }}",
    "join of a generated list": "{{ range(10000) | map('string') | join('x' * 100000) }}",
    "tojson of shared megabytes": "{{ (['x' * 1000000] * 1000) | tojson }}",
    "string of shared megabytes": "{{ (['x' * 1000000] * 1000) | string | length }}",
    "urlencode of shared megabytes": "{{ {'a': ['x' * 1000000] * 1000} | urlencode }}",
    "typed result of shared megabytes": "{{ [['x' * 1000000] * 1000] * 1000 }}",
    "macro recursion": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "recursive loop": "{% for x in [[1], [2]] recursive %}{{ loop(x * 100000) }}{% endfor %}",
    "unique of a huge input": "{{ ((range(10000) | list) * 10000) | unique | list | length }}",
    "int of a huge string": "{{ ('9' * 100000) | int }}",
}


def _refusal(run: Any) -> tuple[str, float, int]:
    """The refusal message of ``run()``, the CPU time it took and the peak memory it allocated.

    Time is this thread's CPU time, measured apart from memory (tracing allocations slows Python down): the
    machine running the suite may be busy, and then wall time measures the machine, not the evaluation.
    """
    started = time.thread_time()
    with pytest.raises(TemplateError) as caught:
        run()
    elapsed = time.thread_time() - started
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError):
            run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value.message, elapsed, peak


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def scope() -> TemplateScope:
    return TemplateScope(inputs={"city": "Paris", "deep": _nested(900)}, nodes={})


# The timeouts fail (rather than hang) the bombs on code without budgets.
@pytest.mark.timeout(20)
@pytest.mark.parametrize("template", list(BOMBS.values()), ids=list(BOMBS))
def test_template_bomb_is_refused_quickly_with_memory_bounded(scope: TemplateScope, template: str) -> None:
    message, elapsed, peak = _refusal(lambda: render_value({"url": template}, scope))
    assert message.startswith("url: ")
    assert any(words in message.lower() for words in REFUSAL_WORDS), message
    assert elapsed < REFUSED_WITHIN_S, f"refused after {elapsed:.2f} s"
    assert peak < PEAK_MEMORY_BYTES, f"peak {peak / 1e6:.0f} MB"


CONDITION_BOMBS = {
    "join of repeated megabytes": "(['x' * 1000000] * 200) | join | length > 0",
    "bytes repeated": "('x'.encode() * 300000000) | length > 0",
    "str.ljust": "'x'.ljust(300000000) | length > 0",
    "sum with a list start": "([[0] * 10000] * 10000) | sum(start=[]) | length > 0",
    "map sorting a repeated list": "([range(10000) | list] * 100000) | map('sort') | map('length') | sum > 0",
    "string of shared megabytes": "(['x' * 1000000] * 1000) | string | length > 0",
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("expr", list(CONDITION_BOMBS.values()), ids=list(CONDITION_BOMBS))
def test_condition_bomb_is_refused_quickly_with_memory_bounded(expr: str) -> None:
    message, elapsed, peak = _refusal(lambda: evaluate_condition(expr, {"ok": True}))
    assert "budget exceeded" in message or "not allowed" in message, message
    assert elapsed < REFUSED_WITHIN_S, f"refused after {elapsed:.2f} s"
    assert peak < PEAK_MEMORY_BYTES, f"peak {peak / 1e6:.0f} MB"


def test_budget_error_names_the_limit_and_the_place(scope: TemplateScope) -> None:
    with pytest.raises(TemplateError) as caught:
        render_value({"config": {"url": "{{ (['x' * 1000000] * 200) | join }}"}}, scope)
    assert caught.value.message.startswith("config.url: template budget exceeded: ")
    assert "larger than 1000000 characters" in caught.value.message

    with pytest.raises(TemplateError) as caught:
        render_value("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", scope)
    assert "template budget exceeded: took more than 100000 steps" in caught.value.message


@pytest.mark.timeout(30)
async def test_a_bomb_in_an_edge_condition_fails_its_node_and_the_run(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    definition = {
        "name": "bomb",
        "nodes": [{"id": "fetch", "type": "noop", "config": {}}, {"id": "store", "type": "noop", "config": {}}],
        "edges": [{"from": "fetch", "to": "store", "when": "(['x' * 1000000] * 200) | join | length > 0"}],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        assert (await engine.run_hash(run_id))["status"] == "failed"
        states = await engine.node_states(run_id)
    assert states["fetch"]["status"] == "failed"
    assert states["fetch"]["error"]["type"] == "condition_error"
    assert states["fetch"]["error"]["message"].startswith("edge condition: template budget exceeded: ")
    assert states.get("store", {}).get("status") != "succeeded"


@pytest.mark.timeout(30)
async def test_a_bomb_in_a_node_config_fails_the_node(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "bomb",
        "nodes": [{"id": "make", "type": "transform", "config": {"output": {"x": JOIN_BOMB}}}],
        "edges": [],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        assert (await engine.run_hash(run_id))["status"] == "failed"
        states = await engine.node_states(run_id)
    assert states["make"]["error"]["type"] == "template_error"
    assert states["make"]["error"]["message"].startswith("config: output.x: template budget exceeded: ")
