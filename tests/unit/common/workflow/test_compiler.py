"""Compiler: IR shape for common graphs, and every error reported at once with its path."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import ValidationFailed
from common.workflow.compiler import compile_definition
from common.workflow.ir import IrEdge, RetryPolicy


def _node(node_id: str, node_type: str = "noop", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, **extra}


def _edge(source: str, to: str, **extra: Any) -> dict[str, Any]:
    return {"from": source, "to": to, **extra}


def _errors(definition: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(definition, **kwargs)
    return caught.value.errors


def test_diamond() -> None:
    definition = {
        "name": "diamond",
        "nodes": [_node("a"), _node("b"), _node("c"), _node("d")],
        "edges": [_edge("a", "b"), _edge("a", "c"), _edge("b", "d"), _edge("c", "d")],
    }
    result = compile_definition(definition, version=3)
    ir = result.ir
    assert ir.name == "diamond"
    assert ir.version == 3
    assert ir.entries == ["a"]
    assert ir.indegree == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert ir.successors == {
        "a": [IrEdge(to="b"), IrEdge(to="c")],
        "b": [IrEdge(to="d")],
        "c": [IrEdge(to="d")],
        "d": [],
    }
    assert {node: (topo[0], topo[1], topo[3]) for node, topo in ir.topology()["n"].items()} == {
        "a": (0, 0, [["b", 0], ["c", 0]]),
        "b": (1, 0, [["d", 0]]),
        "c": (1, 0, [["d", 0]]),
        "d": (2, 0, []),
    }
    assert result.warnings == ir.warnings == []


def test_branch_with_conditions_and_joins() -> None:
    definition = {
        "nodes": [
            _node("start", "transform", config={"output": {"n": "{{ inputs.n }}"}}),
            _node("route", "branch"),
            _node("small"),
            _node("big"),
            _node("either", join="any"),
            _node("both", join="all"),
        ],
        "edges": [
            _edge("start", "route"),
            _edge("route", "small", when="output.n < 10"),
            _edge("route", "big", when="output.n >= 10"),
            _edge("small", "either"),
            _edge("big", "either"),
            _edge("small", "both"),
            _edge("big", "both"),
        ],
    }
    ir = compile_definition(definition, name="named-by-api").ir
    assert ir.name == "named-by-api"
    assert ir.successors["route"] == [IrEdge(to="small", when="output.n < 10"), IrEdge(to="big", when="output.n >= 10")]
    assert ir.nodes["either"].join == "any"
    assert ir.nodes["both"].join == "all"
    assert ir.topology()["n"]["either"][:2] == [2, 1]
    assert ir.topology()["n"]["both"][:2] == [2, 0]
    assert ir.nodes["start"].config == {"output": {"n": "{{ inputs.n }}"}}


def test_branch_without_conditions_warns() -> None:
    definition = {"nodes": [_node("b", "branch"), _node("x")], "edges": [_edge("b", "x")]}
    assert compile_definition(definition).warnings == [
        "nodes[0]: branch node 'b' has no 'when' on its outgoing edges; every path stays live"
    ]


def test_cycle_is_reported_with_its_path() -> None:
    definition = {
        "nodes": [_node("start"), _node("a"), _node("b"), _node("c"), _node("s")],
        "edges": [_edge("start", "a"), _edge("a", "b"), _edge("b", "c"), _edge("c", "a"), _edge("s", "s")],
    }
    assert _errors(definition) == ["cycle: a -> b -> c -> a", "cycle: s -> s"]


def test_no_entry_node() -> None:
    definition = {"nodes": [_node("a"), _node("b")], "edges": [_edge("a", "b"), _edge("b", "a")]}
    assert _errors(definition) == ["cycle: a -> b -> a", "no entry node: every node has an incoming edge"]


def test_unknown_edge_endpoint_names_the_known_nodes() -> None:
    definition = {
        "nodes": [_node("fetch"), _node("store")],
        "edges": [_edge("fetch", "store"), _edge("fetch", "fetchh")],
    }
    assert _errors(definition) == ["edges[1].to: unknown node 'fetchh' (known: fetch, store)"]


def test_duplicate_id_and_duplicate_edge() -> None:
    definition = {
        "nodes": [_node("fetch"), _node("store"), _node("x"), _node("fetch")],
        "edges": [_edge("fetch", "store"), _edge("fetch", "store")],
    }
    assert _errors(definition) == [
        "nodes[3].id: duplicate id 'fetch' (first at nodes[0])",
        "edges[1]: duplicate edge 'fetch' -> 'store' (first at edges[0])",
    ]


def test_too_many_agent_nodes() -> None:
    agents = [_node(f"agent{i}", "agent", config={"prompt": "go"}) for i in range(6)]
    assert _errors({"nodes": agents}) == ["too many agent nodes: 6 (limit 5)"]
    assert _errors({"nodes": agents[:3]}, max_agents=2) == ["too many agent nodes: 3 (limit 2)"]
    assert compile_definition({"nodes": agents[:5]}).ir.agent_count == 5


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (_node("h", "http", config={"url": "ftp//x"}), "nodes[0].config.url: not a valid URL (got 'ftp//x')"),
        (_node("h", "http", config={"url": "https://x", "method": "BREW"}), "nodes[0].config.method: Input should be"),
        (_node("h", "http", config={"url": "http://x", "json": {}, "body": "b"}), "give either 'json' or 'body'"),
        (_node("h", "http", config={}), "nodes[0].config.url: required field missing"),
        (_node("h", "http", config={"url": "http://x", "expected_status": [200, 999]}), "(got [999])"),
        (_node("d", "delay", config={"seconds": -1}), "nodes[0].config.seconds: Input should be greater than or equal"),
        (
            _node("d", "delay", config={"seconds": 90_000}),
            "nodes[0].config.seconds: Input should be less than or equal",
        ),
        (_node("d", "delay", config={"seconds": "{{ inputs.s }}"}), "nodes[0].config.seconds: Input should be a valid"),
        (
            _node("g", "agent", config={"prompt": "p", "output_schema": {"type": "objekt"}}),
            "nodes[0].config.output_schema.type: not a valid JSON Schema:",
        ),
        (_node("g", "agent", config={"prompt": "p", "tools": ["shell"]}), "nodes[0].config.tools[0]: Input should be"),
        (_node("g", "agent", config={"prompt": "p", "max_steps": 0}), "nodes[0].config.max_steps:"),
        (_node("v", "hitl", config={}), "nodes[0].config.title: required field missing"),
        (
            _node("v", "hitl", config={"title": "t", "approvers": ["ann"], "required_approvals": 2}),
            "nodes[0].config: required_approvals is 2 but only 1 approvers are listed",
        ),
        (_node("n", "noop", config={"x": 1}), "nodes[0].config.x: unknown field"),
        (_node("t", "transform", config={}), "nodes[0].config.output: required field missing"),
    ],
)
def test_bad_per_type_config(node: dict[str, Any], expected: str) -> None:
    [error] = _errors({"nodes": [node]})
    assert error.startswith(expected) or expected in error, error


def test_valid_configs_are_dumped_with_defaults() -> None:
    nodes = [
        _node("h", "http", config={"url": "https://{{ inputs.host }}/x", "json": {"a": None}}),
        _node("g", "agent", config={"prompt": "p", "output_schema": {"type": "object"}, "tools": ["finish"]}),
        _node("v", "hitl", config={"title": "ok?"}),
        _node("d", "delay", config={"seconds": 2}),
        _node("o", "http", config={"url": "$inputs.url"}),
    ]
    ir = compile_definition({"nodes": nodes}).ir
    assert ir.nodes["h"].config == {
        "method": "GET",
        "url": "https://{{ inputs.host }}/x",
        "headers": {},
        "query": {},
        "json": {"a": None},
        "timeout_s": 30.0,
        "follow_redirects": True,
        "max_response_bytes": 10 * 1024 * 1024,
        "retry_on_4xx": False,
    }
    assert ir.nodes["g"].config == {
        "prompt": "p",
        "tools": ["finish"],
        "max_steps": 10,
        "max_tokens": 20_000,
        "timeout_s": 300.0,
        "output_schema": {"type": "object"},
    }
    assert ir.nodes["v"].config == {
        "title": "ok?",
        "required_approvals": 1,
        "allow_self_approval": False,
        "on_timeout": "reject",
    }
    assert ir.topology()["n"]["d"][2] == "delay:2.0"
    assert ir.agent_count == 1


def test_several_errors_are_reported_at_once() -> None:
    definition = {
        "nodes": [
            _node("fetch", "http", config={"url": "ftp//x"}),
            _node("wait", "delay", config={"seconds": -5}),
            _node("fetch"),
            _node("bad", timeout_s="soon"),
        ],
        "edges": [_edge("fetch", "store"), _edge("wait", "fetch", when="output.x >"), {"to": "wait"}],
        "outputs": {"r": "{{ nodes.fetch.output +"},
    }
    errors = _errors(definition)
    # Template messages belong to common.workflow.templates; only where they point is asserted here.
    assert [error.split(": ")[0] for error in errors[6:]] == ["edges[1].when", "outputs.r"]
    assert errors[:6] == [
        "nodes[3].timeout_s: Input should be a valid number, unable to parse string as a number (got 'soon')",
        "edges[2].from: required field missing",
        "nodes[0].config.url: not a valid URL (got 'ftp//x'); expected http:// or https://",
        "nodes[1].config.seconds: Input should be greater than or equal to 0 (got -5)",
        "nodes[2].id: duplicate id 'fetch' (first at nodes[0])",
        "edges[0].to: unknown node 'store' (known: fetch, wait)",
    ]


def test_unknown_type_is_a_warning_and_compiles_as_unknown() -> None:
    definition = {
        "nodes": [_node("a"), _node("f", "function", config={"code": "x + 1", "anything": [1]})],
        "edges": [_edge("a", "f")],
    }
    result = compile_definition(definition)
    assert result.warnings == ["nodes[1].type: unknown type 'function'; the node will be skipped at run time"]
    assert result.ir.warnings == result.warnings
    node = result.ir.nodes["f"]
    assert (node.known, node.config) == (False, {"code": "x + 1", "anything": [1]})
    assert result.ir.topology()["n"]["f"][2] == "unknown"


def test_original_platform_definition_compiles_unchanged() -> None:
    definition = {
        "description": "from the original platform",
        "metadata": {"team": "ops"},
        "nodes": [
            {
                "id": "check",
                "type": "conditional",
                "description": "route",
                "metadata": {"ui": {"x": 1}},
                "timeout_ms": 1500,
                "retry": {"max_attempts": 3, "backoff_ms": 200, "backoff_multiplier": 1.5},
            },
            _node("yes"),
            _node("oops"),
        ],
        "edges": [_edge("check", "yes", condition="output.ok"), _edge("check", "oops", when="failed")],
    }
    result = compile_definition(definition)
    ir = result.ir
    assert ir.name == ""
    check = ir.nodes["check"]
    assert (check.type, check.known, check.timeout_s) == ("branch", True, 1.5)
    assert check.retry == RetryPolicy(max_attempts=3, backoff_s=0.2, multiplier=1.5)
    assert ir.successors["check"] == [IrEdge(to="yes", when="output.ok"), IrEdge(to="oops", on_failure=True)]
    assert result.definition.to_json()["edges"][0] == {"from": "check", "to": "yes", "when": "output.ok"}


def test_hitl_branch_labels() -> None:
    nodes = [_node("ask", "hitl", config={"title": "go?"}), _node("yes"), _node("no")]
    ok = {"nodes": nodes, "edges": [_edge("ask", "yes", branch="approved"), _edge("ask", "no", branch="rejected")]}
    assert compile_definition(ok).ir.successors["ask"][1] == IrEdge(to="no", branch="rejected")
    bad = {"nodes": nodes, "edges": [_edge("ask", "yes", branch="approve")]}
    assert _errors(bad) == ["edges[0].branch: hitl node 'ask' decides 'approved' or 'rejected' (got 'approve')"]


def test_template_syntax_errors_and_reference_warnings() -> None:
    definition = {
        "nodes": [
            _node("a", "transform", config={"output": ["{{ nodes.b.output }}", {"k": "{{ 1 + }}"}]}),
            _node("b", "http", config={"url": "https://x/{{ nodes.zz.output }}"}),
        ],
        "edges": [_edge("a", "b")],
    }
    [error] = _errors(definition)
    assert error.startswith("nodes[0].config.output[1].k: unexpected")
    definition["nodes"][0]["config"]["output"] = ["{{ nodes.b.output }}"]
    assert compile_definition(definition).warnings == [
        "nodes[0].config: refers to node 'b', which does not run before 'a'",
        "nodes[1].config: refers to unknown node 'zz'",
    ]


def test_outputs_and_inputs_schema_are_carried() -> None:
    definition = {
        "inputs": {"type": "object", "properties": {"city": {"type": "string"}}},
        "nodes": [_node("a")],
        "outputs": {"city": "{{ inputs.city }}"},
    }
    ir = compile_definition(definition).ir
    assert ir.inputs_schema == definition["inputs"]
    assert ir.outputs == {"city": "{{ inputs.city }}"}


def test_not_an_object_and_empty_nodes() -> None:
    assert _errors([])[0].startswith("definition: Input should be a valid dictionary")  # type: ignore[arg-type]
    assert _errors({"nodes": []}) == ["nodes: List should have at least 1 item after validation, not 0"]


def test_inline_body_references_are_its_own() -> None:
    body = {
        "nodes": [
            {"id": "fetch", "type": "transform", "config": {"output": "{{ inputs.item }}"}},
            {"id": "shape", "type": "transform", "config": {"output": "{{ nodes.fetch.output }}"}},
        ],
        "edges": [{"from": "fetch", "to": "shape"}],
    }
    definition = {
        "name": "each",
        "nodes": [{"id": "each", "type": "map", "config": {"items": "{{ inputs.list }}", "body": body}}],
        "edges": [],
    }
    assert compile_definition(definition).warnings == []


def test_reference_warnings_follow_reachability_through_joins_and_cycles() -> None:
    refers = {"output": "{{ nodes.a }}{{ nodes.c }}"}
    definition = {
        "nodes": [_node("a"), _node("b"), _node("c"), _node("d", "transform", config=refers), _node("e")],
        # a -> b -> d and c -> d: both referenced nodes run before d; e is a side branch of a.
        "edges": [_edge("a", "b"), _edge("b", "d"), _edge("c", "d"), _edge("a", "e")],
    }
    assert compile_definition(definition).warnings == []
    definition["nodes"][4] = _node("e", "transform", config={"output": "{{ nodes.d }}{{ nodes.e }}"})
    assert compile_definition(definition).warnings == [
        "nodes[4].config: refers to node 'd', which does not run before 'e'"
    ]
    # Inside a cycle every member reaches every other: only the cycle itself is reported.
    cyclic = {
        "nodes": [_node("x", "transform", config={"output": "{{ nodes.y }}"}), _node("y")],
        "edges": [_edge("x", "y"), _edge("y", "x")],
    }
    with pytest.raises(ValidationFailed) as caught:
        compile_definition(cyclic)
    assert caught.value.errors == ["cycle: x -> y -> x", "no entry node: every node has an incoming edge"]
