"""The agent loop with a fake model: concurrent tool calls, nudges, limits, invalid output, provider failures."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Sequence
from typing import Any

from common.agent_protocol import ModelReply, ProtocolWriter, ToolCall, Usage
from workers.agent.program import AgentJob
from workers.agent.program._channel import CallRefused, WorkerChannel
from workers.agent.program._loop import NUDGE, SYSTEM_PREAMBLE, run_agent
from workers.agent.program._tools import ToolContext, ToolRegistry, default_registry


def turn(*calls: tuple[str, Any], text: str = "", tokens: int = 10) -> ModelReply:
    return ModelReply(
        text=text,
        tool_calls=[
            ToolCall(id=f"c{i}", name=name, arguments=json.dumps(args)) for i, (name, args) in enumerate(calls)
        ],
        usage=Usage(prompt_tokens=tokens - 1, completion_tokens=1, total_tokens=tokens),
    )


class FakeModel:
    """The worker's model calls as the loop sees them: replies in order, or the refusal to raise."""

    def __init__(self, turns: list[ModelReply | BaseException]) -> None:
        self.turns = turns
        self.seen: list[list[dict[str, Any]]] = []

    async def model_turn(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ModelReply:
        self.seen.append([dict(m) for m in messages])
        reply = self.turns.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


class RendezvousTool:
    """Two calls of it finish only if they run at the same time."""

    name = "rendezvous"
    description = "Wait for the other call."
    parameters: dict[str, Any] = {"type": "object"}

    def __init__(self) -> None:
        self.arrived = 0
        self.both = asyncio.Event()

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        self.arrived += 1
        if self.arrived == 2:
            self.both.set()
        await asyncio.wait_for(self.both.wait(), 2)
        return "met"


def make_job(**overrides: Any) -> AgentJob:
    raw = {
        "run_id": "r1",
        "node_id": "agent",
        "prompt": "do it",
        "system": "Be brief.",
        "model": "m",
        **overrides,
    }
    return AgentJob.model_validate(raw)


async def run(job: AgentJob, model: FakeModel, registry: ToolRegistry | None = None) -> Any:
    writer = ProtocolWriter(io.StringIO())
    # The tools these tests use (get_context, finish, rendezvous) make no calls to the worker.
    ctx = ToolContext(job=job, worker=WorkerChannel(writer, max_call_bytes=1024), writer=writer)
    return await run_agent(job, model, registry or default_registry(), ctx)


async def test_tool_calls_of_one_step_run_concurrently_and_results_go_back() -> None:
    registry = default_registry()
    registry.register(RendezvousTool())
    model = FakeModel([turn(("rendezvous", {}), ("rendezvous", {})), turn(("finish", {"result": "done"}), tokens=5)])
    result = await run(make_job(), model, registry)
    assert (result.status, result.output, result.steps, result.usage.total_tokens) == ("succeeded", "done", 2, 15)
    system, user, assistant, *tool_messages = model.seen[1]
    assert system == {"role": "system", "content": f"{SYSTEM_PREAMBLE}\n\nBe brief."}
    assert user == {"role": "user", "content": "do it"}
    assert [call["id"] for call in assistant["tool_calls"]] == ["c0", "c1"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_messages] == [("c0", "met"), ("c1", "met")]


async def test_a_turn_without_tool_calls_gets_a_nudge() -> None:
    model = FakeModel([turn(text="thinking"), turn(("finish", {"result": 1}))])
    result = await run(make_job(), model)
    assert result.output == 1
    assert model.seen[1][-1] == {"role": "user", "content": NUDGE}


async def test_max_steps() -> None:
    model = FakeModel([turn(("get_context", {}))] * 2)
    result = await run(make_job(max_steps=2), model)
    assert result.status == "failed" and result.error is not None
    assert (result.error.type, result.error.message, result.steps) == ("max_steps", "exceeded max_steps=2", 2)


async def test_max_tokens_counts_the_reported_usage() -> None:
    model = FakeModel([turn(("get_context", {}), tokens=60), turn(("finish", {"result": 1}), tokens=60)])
    result = await run(make_job(max_tokens=100), model)
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("max_tokens", "token budget exceeded: 120 > 100")


async def test_invalid_output_keeps_the_raw_result() -> None:
    model = FakeModel([turn(("finish", {"result": {"n": i}})) for i in range(3)])
    result = await run(make_job(output_schema={"type": "string"}), model)
    assert result.error is not None and result.error.type == "invalid_output"
    assert result.output == {"n": 2} and result.steps == 3


async def test_timeout() -> None:
    class SlowModel(FakeModel):
        async def model_turn(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ModelReply:
            await asyncio.sleep(10)
            raise AssertionError("not reached")

    result = await run(make_job(timeout_s=0.05), SlowModel([]))
    assert result.error is not None
    assert (result.error.type, result.error.message) == ("timeout", "wall timeout of 0.05s exceeded")


async def test_refused_model_calls_keep_their_type() -> None:
    model = FakeModel([turn(("get_context", {})), CallRefused("circuit_open", "circuit open after 5")])
    result = await run(make_job(), model)
    assert result.error is not None and result.error.type == "circuit_open"
    assert result.steps == 2 and result.usage.total_tokens == 10


async def test_a_budget_refusal_ends_the_agent_with_budget_exceeded() -> None:
    model = FakeModel([CallRefused("budget_exceeded", "tenant 't' is over its daily agent token budget")])
    result = await run(make_job(), model)
    assert result.error is not None
    assert (result.error.type, result.steps, result.usage.total_tokens) == ("budget_exceeded", 1, 0)
