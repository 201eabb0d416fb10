"""The patch policy: what an agent may append, and which definition changes weaken an approval gate."""

from __future__ import annotations

from typing import Any

import pytest

from common.auth import AgentGrant
from common.runs.patch_policy import check_agent_patch, nodes_added, weakened_gates
from common.workflow.definition import WorkflowDefinition
from common.workflow.node_configs import DEFAULT_PATCH_TYPES

BASE: dict[str, Any] = {
    "nodes": [
        {"id": "a", "type": "agent", "config": {"prompt": "p"}},
        {"id": "g", "type": "hitl", "config": {"title": "ok?"}},
        {"id": "z", "type": "noop"},
    ],
    "edges": [{"from": "a", "to": "g"}, {"from": "g", "to": "z", "branch": "approved"}],
}
GRANT = AgentGrant("run", "a", DEFAULT_PATCH_TYPES)


def add(path: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


def refusals(ops: list[dict[str, Any]], grant: AgentGrant = GRANT, before: tuple[str, ...] = ()) -> list[str]:
    return [str(r) for r in check_agent_patch(ops, BASE, grant, before)]


def test_appending_downstream_nodes_is_allowed() -> None:
    ops = [
        add("/edges/-", {"from": "n1", "to": "n2"}),
        add("/nodes/-", {"id": "n1", "type": "http", "config": {"url": "https://x.example"}}),
        add("/nodes/-", {"id": "n2", "type": "conditional"}),
        add("/edges/-", {"from": "a", "to": "n1"}),
        {"op": "test", "path": "/nodes/0/id", "value": "a"},
    ]
    assert refusals(ops) == []
    assert nodes_added(ops) == ["n1", "n2"]
    # A node added by an earlier patch of the same agent may feed new ones.
    assert (
        refusals(
            [add("/nodes/-", {"id": "n3", "type": "noop"}), add("/edges/-", {"from": "n1", "to": "n3"})], before=("n1",)
        )
        == []
    )


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "copy", "from": "/nodes/2", "path": "/nodes/-"}], "ops[0] (copy /nodes/-): an agent may only add"),
        ([{"op": "move", "from": "/edges/1", "path": "/edges/0"}], "ops[0] (move /edges/0)"),
        ([add("/outputs", {"x": 1})], "ops[0] (add /outputs): an agent may only append"),
        ([add("/nodes/0", {"id": "q", "type": "noop"})], "ops[0] (add /nodes/0): an agent may only append"),
        ([add("/nodes/-", {"id": "z", "type": "noop"})], "node 'z' already exists"),
        ([add("/nodes/-", "nope")], "expected a node object"),
        (
            [
                add("/nodes/-", {"id": "h", "type": "hitl", "config": {"title": "t"}}),
                add("/edges/-", {"from": "a", "to": "h"}),
            ],
            "type 'hitl'",
        ),
        ([add("/nodes/-", {"id": "l", "type": "loop"}), add("/edges/-", {"from": "a", "to": "l"})], "type 'loop'"),
        (
            [add("/nodes/-", {"id": "n", "type": "noop"}), add("/edges/-", {"from": "z", "to": "n"})],
            "edge z->n: an agent's new edges start",
        ),
        ([add("/edges/-", {"from": "a", "to": "z"})], "edge a->z: an agent's new edges end at a node it added"),
        ([add("/edges/-", [])], "expected an edge object"),
        ([add("/nodes/-", {"id": "n", "type": "noop"})], "ops[0] (add /nodes/-): node 'n' needs an edge from 'a'"),
    ],
)
def test_everything_else_is_refused_with_its_op(ops: list[dict[str, Any]], expected: str) -> None:
    assert any(expected in refusal for refusal in refusals(ops)), refusals(ops)


def test_explicitly_allowed_fan_out_still_checks_its_body_and_child_agents() -> None:
    grant = AgentGrant("run", "a", ("map", "noop", "agent"))
    body = {"nodes": [{"id": "b", "type": "http", "config": {"url": "https://x.example"}}]}
    ops = [
        add("/nodes/-", {"id": "m", "type": "map", "config": {"items": [1], "body": body}}),
        add("/edges/-", {"from": "a", "to": "m"}),
    ]
    assert "node 'm' body node 'b': type 'http'" in refusals(ops, grant)[0]
    child = {"prompt": "p", "tools": ["patch_workflow"], "patch": {"allowed_types": ["noop", "workflow"]}}
    ops = [add("/nodes/-", {"id": "c", "type": "agent", "config": child}), add("/edges/-", {"from": "a", "to": "c"})]
    assert "may not allow its own patches to add workflow" in refusals(ops, grant)[0]
    default_child = {"prompt": "p", "tools": ["patch_workflow"]}
    ops = [
        add("/nodes/-", {"id": "c", "type": "agent", "config": default_child}),
        add("/edges/-", {"from": "a", "to": "c"}),
    ]
    assert "may not allow its own patches to add branch, delay, http, transform" in refusals(ops, grant)[0]


def definition(**changes: Any) -> WorkflowDefinition:
    raw: dict[str, Any] = {"nodes": [dict(n) for n in BASE["nodes"]], "edges": list(BASE["edges"])}
    for key, value in changes.items():
        raw[key] = value(raw[key])
    return WorkflowDefinition.model_validate(raw)


def test_gate_changes_are_named() -> None:
    old = definition()
    assert weakened_gates(old, definition()) == []
    extra = definition(
        nodes=lambda n: [*n, {"id": "w", "type": "noop"}], edges=lambda e: [*e, {"from": "g", "to": "w"}]
    )
    assert weakened_gates(old, extra) == []
    timed = definition(
        nodes=lambda n: [n[0], {"id": "g", "type": "hitl", "config": {"title": "ok?", "timeout_s": 1}}, n[2]]
    )
    assert weakened_gates(old, timed) == ["hitl node 'g': config.timeout_s changed"]
    gone = definition(nodes=lambda n: [n[0], n[2]], edges=lambda e: [])
    assert weakened_gates(old, gone) == ["hitl node 'g' removed"]
    unwired = definition(edges=lambda e: e[:1])
    assert weakened_gates(old, unwired) == [
        "hitl node 'g': edge g->z removed or changed",
        "hitl node 'g': z no longer wait for it (a path goes around it)",
    ]
    around = definition(edges=lambda e: [*e, {"from": "a", "to": "z"}])
    assert weakened_gates(old, around) == ["hitl node 'g': z no longer wait for it (a path goes around it)"]
