"""Definition models: compatibility aliases, JSON Schema export, content hash, per-type configs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.json_schema import compile_schema
from common.workflow.definition import WorkflowDefinition, definition_hash, error_lines, json_schema
from common.workflow.node_types import NODE_TYPES, node_type_schemas

EXAMPLES = Path(__file__).parents[4] / "docs" / "examples"


def _definition(**extra: Any) -> dict[str, Any]:
    return {
        "name": "wf",
        "nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "transform", "config": {"output": 1}}],
        "edges": [{"from": "a", "to": "b"}],
        **extra,
    }


def test_edge_condition_is_an_alias_of_when() -> None:
    wf = WorkflowDefinition.model_validate(_definition(edges=[{"from": "a", "to": "b", "condition": "output.ok"}]))
    assert wf.edges[0].when == "output.ok"
    assert wf.to_json()["edges"] == [{"from": "a", "to": "b", "when": "output.ok"}]


def test_edge_condition_and_different_when_conflict() -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowDefinition.model_validate(_definition(edges=[{"from": "a", "to": "b", "when": "x", "condition": "y"}]))
    assert error_lines(caught.value) == ["edges[0]: give when or condition, not both"]


def test_node_timeout_ms_becomes_timeout_s() -> None:
    wf = WorkflowDefinition.model_validate(_definition(nodes=[{"id": "a", "type": "noop", "timeout_ms": 2500}]))
    assert wf.nodes[0].timeout_s == 2.5
    assert "timeout_ms" not in wf.to_json()["nodes"][0]


def test_retry_original_spelling_maps_onto_the_policy() -> None:
    retry = {"max_attempts": 4, "backoff_ms": 250, "backoff_multiplier": 3}
    wf = WorkflowDefinition.model_validate(_definition(nodes=[{"id": "a", "type": "noop", "retry": retry}]))
    policy = wf.nodes[0].retry.policy() if wf.nodes[0].retry else None
    assert policy is not None
    assert (policy.max_attempts, policy.backoff_s, policy.multiplier, policy.max_backoff_s) == (4, 0.25, 3.0, 60.0)
    assert wf.to_json()["nodes"][0]["retry"] == {"max_attempts": 4, "backoff_s": 0.25, "multiplier": 3.0}


def test_conditional_type_is_normalised_to_branch() -> None:
    wf = WorkflowDefinition.model_validate(_definition(nodes=[{"id": "a", "type": "conditional"}]))
    assert wf.nodes[0].type == "branch"


def test_metadata_and_description_accepted_and_name_optional() -> None:
    raw = _definition(description="d", metadata={"owner": "x"})
    raw["nodes"][0] |= {"description": "n", "metadata": {"k": [1]}}
    del raw["name"]
    wf = WorkflowDefinition.model_validate(raw)
    assert wf.name is None
    assert wf.metadata == {"owner": "x"}
    assert wf.nodes[0].metadata == {"k": [1]}


def test_unknown_fields_are_rejected_with_their_path() -> None:
    raw = _definition(colour="red")
    raw["nodes"][1]["retries"] = 3
    raw["edges"][0]["label"] = "x"
    with pytest.raises(ValidationError) as caught:
        WorkflowDefinition.model_validate(raw)
    assert sorted(error_lines(caught.value)) == [
        "colour: unknown field",
        "edges[0].label: unknown field",
        "nodes[1].retries: unknown field",
    ]


def test_node_id_pattern() -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowDefinition.model_validate(_definition(nodes=[{"id": "1st node", "type": "noop"}]))
    [line] = error_lines(caught.value)
    assert line.startswith("nodes[0].id: String should match pattern")
    assert line.endswith("(got '1st node')")


def test_inputs_must_be_a_valid_json_schema() -> None:
    with pytest.raises(ValidationError) as caught:
        WorkflowDefinition.model_validate(_definition(inputs={"type": "objekt"}))
    [line] = error_lines(caught.value)
    assert line.startswith("inputs.type: not a valid JSON Schema:")


def test_json_schema_export_is_a_valid_schema_that_accepts_the_examples() -> None:
    schema = json_schema()
    validator = compile_schema(schema)
    for path in sorted(EXAMPLES.glob("*.json")):
        assert validator.errors(json.loads(path.read_text())) == [], path.name
    # The per-type config schema applies by type, including through the ``conditional`` alias.
    bad = _definition(nodes=[{"id": "a", "type": "delay", "config": {"seconds": -1}}])
    assert validator.errors(bad) != []
    compat = _definition(
        nodes=[{"id": "a", "type": "conditional", "timeout_ms": 5, "retry": {"backoff_ms": 1}}],
        edges=[{"from": "a", "to": "a", "condition": "x"}],
    )
    assert validator.errors(compat) == []


def test_node_type_schemas_cover_every_type_and_are_valid() -> None:
    schemas = node_type_schemas()
    assert (
        set(schemas)
        == set(NODE_TYPES)
        == {"http", "agent", "hitl", "noop", "transform", "delay", "branch", "workflow", "loop", "map"}
    )
    for schema in schemas.values():
        compile_schema(schema)
    assert "json" in schemas["http"]["properties"]


def test_definition_hash_is_stable_under_key_order_and_aliases() -> None:
    one = WorkflowDefinition.model_validate(_definition())
    reordered = json.loads(json.dumps(_definition(), sort_keys=True))
    reordered = {key: reordered[key] for key in reversed(list(reordered))}
    aliased = _definition(edges=[{"to": "b", "from": "a"}])
    assert definition_hash(one) == definition_hash(WorkflowDefinition.model_validate(reordered))
    assert definition_hash(one) == definition_hash(WorkflowDefinition.model_validate(aliased))
    assert len(definition_hash(one)) == 64
    changed = _definition(edges=[{"from": "a", "to": "b", "when": "output"}])
    assert definition_hash(one) != definition_hash(WorkflowDefinition.model_validate(changed))
