"""Definitions of the original platform run unchanged: config fields its legacy node types carried (and ignored)
are accepted with a warning, not refused; the same fields on aob's own types are still refused."""

from __future__ import annotations

from typing import Any

import pytest

from common.workflow.compiler import ValidationFailed, compile_definition


def _definition(node_type: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "legacy",
        "nodes": [
            {"id": "fetch", "type": "noop"},
            {"id": "check", "type": node_type, "config": config},
            {"id": "big", "type": "noop"},
        ],
        "edges": [{"from": "fetch", "to": "check"}, {"from": "check", "to": "big", "condition": "output > 1"}],
    }


def test_a_conditional_nodes_own_config_is_ignored_with_a_warning() -> None:
    config = {"condition": "$nodes.fetch.output > 1", "description": "route big ones"}
    result = compile_definition(_definition("conditional", config))
    assert result.ir.nodes["check"].type == "branch"
    assert result.ir.nodes["check"].config == {}
    warning = next(w for w in result.warnings if w.startswith("nodes[1].config"))
    assert "'condition', 'description'" in warning and "conditional" in warning
    # What is stored is the normalised definition: it compiles again, with nothing left to ignore.
    stored = result.definition.model_dump(mode="json", by_alias=True, exclude_none=True)
    again = compile_definition(stored)
    assert again.ir.nodes["check"].config == {} and not any(w.startswith("nodes[1].config") for w in again.warnings)


def test_the_same_fields_on_aobs_own_type_are_still_refused() -> None:
    with pytest.raises(ValidationFailed) as failed:
        compile_definition(_definition("branch", {"condition": "x"}))
    assert any("nodes[1].config" in error and "condition" in error for error in failed.value.errors)
