"""The tool registry (selection, schemas, argument checks, errors as results) and finish's schema repairs."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from common.agent_protocol import ProtocolWriter
from common.errors import AobError, ValidationFailed
from workers.agent.program import AgentJob
from workers.agent.program._provider import ToolCall
from workers.agent.program._tools import MAX_REPAIRS, ToolContext, ToolRegistry, default_registry
from workers.http import HttpFetcher, SsrfGuard

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def job(**overrides: Any) -> AgentJob:
    raw: dict[str, Any] = {
        "run_id": "r1",
        "node_id": "agent",
        "prompt": "p",
        "model": "m",
        "llm": {"base_url": "http://llm/v1", "api_key": "sk-x"},
        "context": {"inputs": {"city": "Oslo"}, "upstream": {"fetch": [1, 2]}},
        **overrides,
    }
    return AgentJob.model_validate(raw)


@pytest.fixture
async def ctx() -> AsyncIterator[ToolContext]:
    async with httpx.AsyncClient() as client:
        yield ToolContext(
            job=job(output_schema=SCHEMA),
            fetcher=HttpFetcher(client, SsrfGuard()),
            writer=ProtocolWriter(io.StringIO()),
        )


def call(name: str, arguments: Any) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=arguments if isinstance(arguments, str) else json.dumps(arguments))


class EchoTool:
    name = "echo"
    description = "Echo the text."
    parameters: dict[str, Any] = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        if args["text"] == "boom":
            raise RuntimeError("exploded")
        if args["text"] == "refuse":
            raise AobError("refused on purpose")
        return {"echo": args["text"]}


def test_a_new_tool_joins_the_registry_and_schemas_are_sorted_and_stable() -> None:
    registry = default_registry()
    registry.register(EchoTool())
    names = [schema["function"]["name"] for schema in registry.schemas()]
    assert names == sorted(names) and "echo" in names
    assert registry.schemas() == registry.schemas()
    with pytest.raises(ValueError, match="tool 'echo' is registered twice"):
        registry.register(EchoTool())


def test_select_adds_finish_and_names_unknown_tools() -> None:
    registry = default_registry()
    assert registry.select(["http_request"]).names == ["finish", "http_request"]
    assert registry.select(None).names == registry.names
    with pytest.raises(ValidationFailed, match=r"tools: unknown tool 'browse' \(known: execute_pipeline, finish,"):
        registry.select(["browse"])


async def test_tool_problems_come_back_as_error_results(ctx: ToolContext) -> None:
    registry = ToolRegistry([EchoTool()])
    assert await registry.call(call("echo", {"text": "hi"}), ctx, step=1) == {"echo": "hi"}
    cases = {
        "unknown tool 'nope' (available: echo)": call("nope", {}),
        "echo: arguments are not valid JSON": call("echo", "{oops"),
        "echo: arguments must be a JSON object, got list": call("echo", [1]),
        'echo.text: 5 is not of type "string"': call("echo", {"text": 5}),
        'echo.(arguments): "text" is a required property': call("echo", {}),
        "RuntimeError: exploded": call("echo", {"text": "boom"}),
        "refused on purpose": call("echo", {"text": "refuse"}),
    }
    for message, bad in cases.items():
        result = await registry.call(bad, ctx, step=1)
        assert set(result) == {"error"} and message in result["error"]["message"], result
    crashed = await registry.call(call("echo", {"text": "boom"}), ctx, step=1)
    assert crashed["error"]["type"] == "tool_crashed"


async def test_get_context_returns_inputs_and_upstream(ctx: ToolContext) -> None:
    result = await default_registry().call(call("get_context", {}), ctx, step=1)
    assert result == {"inputs": {"city": "Oslo"}, "upstream": {"fetch": [1, 2]}}


async def test_finish_accepts_a_valid_result(ctx: ToolContext) -> None:
    assert await default_registry().call(call("finish", {"result": {"n": 1}}), ctx, step=1) == {"accepted": True}
    assert ctx.finish.done and ctx.finish.result == {"n": 1}


async def test_finish_null_is_a_result_when_no_schema_applies(ctx: ToolContext) -> None:
    ctx.job = job()
    await default_registry().call(call("finish", {"result": None}), ctx, step=1)
    assert ctx.finish.done and ctx.finish.result is None and ctx.finish.failure is None


async def test_finish_gets_two_repairs_then_fails_with_the_raw_output(ctx: ToolContext) -> None:
    registry = default_registry()
    for repair in range(1, MAX_REPAIRS + 1):
        reply = await registry.call(call("finish", {"result": {"n": "x"}}), ctx, step=repair)
        assert reply["accepted"] is False and f"repair {repair} of {MAX_REPAIRS}" in reply["instruction"]
        assert reply["errors"] == ['result[\'n\']: "x" is not of type "integer"']
        assert not ctx.finish.done
    await registry.call(call("finish", {"result": {"m": 1}}), ctx, step=3)
    failure = ctx.finish.failure
    assert failure is not None and failure.type == "invalid_output"
    assert failure.details == {"errors": ['result: "n" is a required property'], "raw_output": {"m": 1}}


async def test_patch_workflow_without_api_access_tells_the_model(ctx: ToolContext) -> None:
    result = await default_registry().call(
        call("patch_workflow", {"ops": [{"op": "remove", "path": "/x"}]}), ctx, step=1
    )
    assert result["error"]["message"] == "patch_workflow: this job has no API access"


async def test_http_request_goes_through_the_ssrf_guard(ctx: ToolContext) -> None:
    result = await default_registry().call(
        call("http_request", {"method": "GET", "url": "http://169.254.169.254/latest/meta-data"}), ctx, step=1
    )
    assert result["error"]["type"] == "ssrf_blocked"
