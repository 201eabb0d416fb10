"""The deployment's limits on map and loop nodes, found wherever a definition states a value."""

from __future__ import annotations

from typing import Any

from common.workflow.child_run_limits import ChildRunLimits, child_run_limit_errors

LIMITS = ChildRunLimits(map_concurrency=10, map_items=3, loop_iterations=5)


def _node(node_type: str, **config: Any) -> dict[str, Any]:
    return {"id": node_type, "type": node_type, "config": config}


def test_values_within_the_limits_and_defaults_pass() -> None:
    definition = {"nodes": [_node("map", items=[1, 2, 3], concurrency=10), _node("loop", max_iterations=5)]}
    assert child_run_limit_errors(definition, LIMITS) == []
    assert child_run_limit_errors({"nodes": [_node("map", items="{{ inputs.xs }}")]}, LIMITS) == []


def test_each_value_above_a_limit_is_named_with_its_path_and_setting() -> None:
    definition = {
        "nodes": [
            _node("noop"),
            _node("map", items=[1, 2, 3, 4], concurrency=11, max_items=4),
            _node("loop", max_iterations=6),
        ]
    }
    assert child_run_limit_errors(definition, LIMITS) == [
        "nodes[1].config.concurrency: 11 is above the limit of 10 (AOB_MAX_MAP_CONCURRENCY)",
        "nodes[1].config.max_items: 4 is above the limit of 3 (AOB_MAX_MAP_ITEMS)",
        "nodes[1].config.items: item count 4 is above the limit of 3 (AOB_MAX_MAP_ITEMS)",
        "nodes[2].config.max_iterations: 6 is above the limit of 5 (AOB_MAX_LOOP_ITERATIONS)",
    ]


def test_inline_bodies_are_searched_at_every_depth() -> None:
    inner = {"nodes": [_node("map", items=[1], concurrency=99)]}
    middle = {"nodes": [_node("loop", body=inner, max_iterations=1)]}
    outer = {"nodes": [_node("map", items=[1], body=middle)]}
    assert child_run_limit_errors(outer, LIMITS) == [
        "nodes[0].config.body.nodes[0].config.body.nodes[0].config.concurrency: 99 is above the limit of 10"
        " (AOB_MAX_MAP_CONCURRENCY)"
    ]
