"""Definition limits: each one named with its value, checked before parsing, inline bodies included."""

from __future__ import annotations

from typing import Any

import pytest

from common.workflow.compiler import compile_definition
from common.workflow.limits import DefinitionLimits, DefinitionTooLarge, check_size, json_bytes

SMALL = DefinitionLimits(max_nodes=3, max_edges=2, max_bytes=2_000, max_node_config_bytes=100)


def _chain(n: int, **config: Any) -> dict[str, Any]:
    return {
        "nodes": [{"id": f"n{i}", "type": "transform", "config": {"output": 1, **config}} for i in range(n)],
        "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)],
    }


def test_at_the_limits_a_definition_passes() -> None:
    check_size(_chain(3), SMALL)


def test_every_limit_gone_over_is_named_with_its_value() -> None:
    with pytest.raises(DefinitionTooLarge) as caught:
        check_size(_chain(4, text="x" * 500), SMALL)
    exceeded = {(item.setting, item.where) for item in caught.value.exceeded}
    assert ("max_definition_nodes", "nodes (count)") in exceeded
    assert ("max_definition_edges", "edges (count)") in exceeded
    assert ("max_definition_bytes", "definition (bytes)") in exceeded
    assert ("max_node_config_bytes", "nodes[3].config") in exceeded
    assert "nodes (count): 4 is over the limit of 3 (AOB_MAX_DEFINITION_NODES)" in caught.value.errors


def test_compile_checks_limits_only_when_given_and_inside_inline_bodies() -> None:
    compile_definition(_chain(5))
    with pytest.raises(DefinitionTooLarge):
        compile_definition(_chain(5), limits=SMALL)
    body = _chain(4)
    loop = {"nodes": [{"id": "l", "type": "loop", "config": {"body": body, "until": "true"}}]}
    roomy = DefinitionLimits(max_nodes=3, max_node_config_bytes=10_000)
    with pytest.raises(Exception, match="AOB_MAX_DEFINITION_NODES") as caught:
        compile_definition(loop, limits=roomy)
    assert "nodes[0].config.body" in str(caught.value)


def test_json_bytes_counts_utf8_and_survives_lone_surrogates() -> None:
    assert json_bytes({"a": "é"}) == len('{"a":"é"}'.encode())
    assert json_bytes("\ud800") > 0
    assert json_bytes({1j: 1}) == 0
