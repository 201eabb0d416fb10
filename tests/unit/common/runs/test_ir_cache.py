"""IrShape: what the worker and coordinator derive once per distinct IR text (not once per run or token)."""

from __future__ import annotations

import pytest

from common.runs.ir_cache import IrShape
from common.workflow.compiler import compile_definition
from common.workflow.templates import has_templates

SHAPE = IrShape(
    compile_definition(
        {
            "name": "w",
            "nodes": [
                {"id": "a", "type": "noop"},
                {"id": "b", "type": "transform", "config": {"output": [1, {"k": "plain"}]}},
                {"id": "c", "type": "transform", "config": {"output": {"x": ["{{ nodes.a.output }}"]}}},
                {"id": "d", "type": "http", "config": {"url": "https://x.test/", "headers": {"k": "{{ secrets.K }}"}}},
            ],
            "edges": [{"from": "a", "to": "b"}, {"from": "b", "to": "c"}, {"from": "a", "to": "d"}],
        }
    ).ir
)


@pytest.mark.parametrize(("node_id", "templated"), [("a", False), ("b", False), ("c", True), ("d", True)])
def test_only_configs_with_templates_or_secret_references_need_rendering(node_id: str, templated: bool) -> None:
    assert SHAPE.templated(node_id) is templated
    assert has_templates(SHAPE.ir.nodes[node_id].config) is templated


def test_needed_outputs_are_the_predecessors_and_the_nodes_a_config_names() -> None:
    assert SHAPE.needed_outputs("a") == []
    assert SHAPE.needed_outputs("c") == ["a", "b"]
    assert SHAPE.predecessors("c") == ["b"]
