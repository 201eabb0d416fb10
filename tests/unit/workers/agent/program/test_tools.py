"""The tool registry (selection, schemas, argument checks, errors as results) and finish's schema repairs."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from common.agent_protocol import HttpCall, HttpReply, PatchCall, PatchReply, ProtocolWriter, ToolCall
from common.errors import AobError, ValidationFailed
from workers.agent.program import AgentJob
from workers.agent.program._channel import CallRefused, WorkerChannel
from workers.agent.program._tools import MAX_REPAIRS, ToolContext, ToolRegistry, default_registry

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def job(**overrides: Any) -> AgentJob:
    raw: dict[str, Any] = {
        "run_id": "r1",
        "node_id": "agent",
        "prompt": "p",
        "model": "m",
        "context": {"inputs": {"city": "Oslo"}, "upstream": {"fetch": [1, 2]}},
        **overrides,
    }
    return AgentJob.model_validate(raw)


class FakeWorker(WorkerChannel):
    """The worker's side of the tools' calls: records them and answers (or refuses) as scripted."""

    def __init__(self) -> None:
        super().__init__(ProtocolWriter(io.StringIO()), max_call_bytes=1024)
        self.calls: list[HttpCall | PatchCall] = []
        self.http_reply: HttpReply | CallRefused = HttpReply(status=200, url="http://x/", body={"ok": 1})

    async def http(self, call: HttpCall) -> HttpReply:
        self.calls.append(call)
        if isinstance(self.http_reply, CallRefused):
            raise self.http_reply
        return self.http_reply

    async def patch(self, call: PatchCall) -> PatchReply:
        self.calls.append(call)
        return PatchReply(status=422, body={"error": {"message": "edges[0].to: unknown node 'x'"}})


@pytest.fixture
def ctx() -> ToolContext:
    return ToolContext(job=job(output_schema=SCHEMA), worker=FakeWorker(), writer=ProtocolWriter(io.StringIO()))


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


async def test_patch_workflow_without_permission_tells_the_model(ctx: ToolContext) -> None:
    result = await default_registry().call(
        call("patch_workflow", {"ops": [{"op": "remove", "path": "/x"}]}), ctx, step=1
    )
    assert result["error"]["message"] == "patch_workflow: this node may not patch its workflow"
    assert isinstance(ctx.worker, FakeWorker) and ctx.worker.calls == []


async def test_patch_workflow_asks_the_worker_and_shows_the_api_refusal(ctx: ToolContext) -> None:
    ctx.job = job(patch=True)
    ops = [{"op": "add", "path": "/edges/-", "value": {"from": "agent", "to": "x"}}]
    result = await default_registry().call(call("patch_workflow", {"ops": ops, "reason": "r"}), ctx, step=1)
    assert result == {"applied": False, "status": 422, "error": {"error": {"message": "edges[0].to: unknown node 'x'"}}}
    assert isinstance(ctx.worker, FakeWorker) and ctx.worker.calls == [PatchCall(ops=ops, reason="r")]


async def test_http_request_asks_the_worker_and_its_refusal_reaches_the_model(ctx: ToolContext) -> None:
    worker = ctx.worker
    assert isinstance(worker, FakeWorker)
    result = await default_registry().call(
        call("http_request", {"method": "POST", "url": "http://x/", "body": "text"}), ctx, step=1
    )
    assert result == {"status": 200, "content_type": None, "body": {"ok": 1}}
    assert worker.calls == [HttpCall(method="POST", url="http://x/", body="text", body_format="text")]
    worker.http_reply = CallRefused("ssrf_blocked", "refused: 169.254.169.254 is link-local")
    result = await default_registry().call(
        call("http_request", {"method": "GET", "url": "http://169.254.169.254/latest/meta-data"}), ctx, step=1
    )
    assert result["error"]["type"] == "ssrf_blocked"
