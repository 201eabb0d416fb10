"""The agent loop: model turn → tool calls (concurrently) → results back, until ``finish`` or a limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.agent_protocol import AgentError, AgentResult, ModelReply, ToolCall, Usage
from common.errors import AobError
from common.tracing import AttributeValue, traced
from workers.agent.program._channel import CallRefused
from workers.agent.program._job import AgentJob
from workers.agent.program._tools import ToolContext, ToolRegistry

SYSTEM_PREAMBLE = (
    "You are an agent running as one node of an aob workflow. Use the tools you are given to do the task. "
    "get_context returns the run's inputs and the outputs of upstream nodes. When the task is done, call finish "
    "with the result: it becomes this node's output. Only a finish call ends the task."
)
NUDGE = "You did not call a tool. Continue the task, and call finish with the result when it is done."


class TurnModel(Protocol):
    """What the loop needs from a model: the next reply to a conversation, given the tool schemas (the worker's
    ``WorkerChannel.model_turn`` in the program)."""

    async def model_turn(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ModelReply: ...


class AgentFailed(AobError):
    """The agent ended without an accepted result; ``error_type`` is the documented reason."""

    def __init__(self, error_type: str, message: str, *, details: Any = None, output: Any = None) -> None:
        super().__init__(message, details=details)
        self.error_type = error_type
        self.output = output


@dataclass
class _Progress:
    usage: Usage = field(default_factory=Usage)
    steps: int = 0


def initial_messages(job: AgentJob) -> list[dict[str, Any]]:
    """The stable system prompt first (the provider can cache that prefix), then the node's prompt."""
    system = SYSTEM_PREAMBLE if not job.system else f"{SYSTEM_PREAMBLE}\n\n{job.system}"
    return [{"role": "system", "content": system}, {"role": "user", "content": job.prompt}]


async def run_agent(job: AgentJob, model: TurnModel, tools: ToolRegistry, ctx: ToolContext) -> AgentResult:
    """Run the loop under the job's wall timeout; every ending, good or bad, becomes an ``AgentResult``."""
    progress = _Progress()
    try:
        async with asyncio.timeout(job.timeout_s):
            output = await _loop(job, model, tools, ctx, progress)
    except TimeoutError:
        error = AgentError(type="timeout", message=f"wall timeout of {job.timeout_s:g}s exceeded")
        return _failed(error, None, progress)
    except CallRefused as exc:
        return _failed(AgentError(type=exc.error_type, message=exc.message), None, progress)
    except AgentFailed as exc:
        return _failed(AgentError(type=exc.error_type, message=exc.message, details=exc.details), exc.output, progress)
    ctx.writer.log("INFO", "agent finished", steps=progress.steps, total_tokens=progress.usage.total_tokens)
    return AgentResult(status="succeeded", output=output, usage=progress.usage, steps=progress.steps)


def _failed(error: AgentError, output: Any, progress: _Progress) -> AgentResult:
    return AgentResult(status="failed", output=output, error=error, usage=progress.usage, steps=progress.steps)


async def _loop(job: AgentJob, model: TurnModel, tools: ToolRegistry, ctx: ToolContext, progress: _Progress) -> Any:
    messages = initial_messages(job)
    schemas = tools.schemas()
    writer = ctx.writer
    for step in range(1, job.max_steps + 1):
        progress.steps = step
        writer.log("INFO", "model call", step=step, messages=len(messages))
        with traced(ctx.tracing, "aob.agent.model_call", attributes={"aob.step": step, "aob.model": job.model}) as span:
            turn = await model.model_turn(messages, schemas)
            if span is not None:
                span.set_attribute("aob.tokens", turn.usage.total_tokens)
                span.set_attribute("aob.tool_calls", len(turn.tool_calls))
        progress.usage = progress.usage.add(turn.usage)
        if not turn.usage_reported:
            writer.log(
                "WARNING", "provider reported no usage; the worker charged the call's whole reservation", step=step
            )
        writer.log(
            "INFO",
            "model replied",
            event="usage",
            step=step,
            tool_calls=[call.name for call in turn.tool_calls],
            prompt_tokens=turn.usage.prompt_tokens,
            completion_tokens=turn.usage.completion_tokens,
            tokens=turn.usage.total_tokens,
            total_tokens=progress.usage.total_tokens,
        )
        if progress.usage.total_tokens > job.max_tokens:
            raise AgentFailed("max_tokens", f"token budget exceeded: {progress.usage.total_tokens} > {job.max_tokens}")
        messages.append(turn.as_message())
        if not turn.tool_calls:
            messages.append({"role": "user", "content": NUDGE})
            continue
        contents = await asyncio.gather(*(_tool_call(tools, call, ctx, step) for call in turn.tool_calls))
        messages.extend(tool_message(call, content) for call, content in zip(turn.tool_calls, contents, strict=True))
        finish = ctx.finish
        if finish.failure is not None:
            raw = finish.failure.details.get("raw_output") if isinstance(finish.failure.details, dict) else None
            raise AgentFailed(finish.failure.type, finish.failure.message, details=finish.failure.details, output=raw)
        if finish.done:
            return finish.result
    raise AgentFailed("max_steps", f"exceeded max_steps={job.max_steps}")


async def _tool_call(tools: ToolRegistry, call: ToolCall, ctx: ToolContext, step: int) -> Any:
    """One tool call, in a span of its own when tracing (marked failed when the model gets an error back)."""
    attributes: dict[str, AttributeValue] = {"aob.step": step, "aob.tool": call.name, "aob.call_id": call.id}
    with traced(ctx.tracing, f"aob.agent.tool {call.name}", attributes=attributes) as span:
        content = await tools.call(call, ctx, step=step)
        if span is not None and isinstance(content, dict) and set(content) == {"error"}:
            span.fail(str(content["error"].get("type", "error")))
    return content


def tool_message(call: ToolCall, content: Any) -> dict[str, Any]:
    """The ``tool`` message answering ``call``; non-string content is sent as JSON."""
    body = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
    return {"role": "tool", "tool_call_id": call.id, "content": body}
