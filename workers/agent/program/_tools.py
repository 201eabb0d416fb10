"""The tool registry and the agent's tools: http_request, get_context, execute_pipeline, patch_workflow, finish."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.agent_protocol import AgentError, HttpCall, PatchCall, ProtocolWriter, ToolCall
from common.errors import AobError, ValidationFailed
from common.json_schema import instance_errors
from common.tracing import Tracing
from workers.agent.program._channel import WorkerChannel
from workers.agent.program._job import AgentJob
from workers.agent.program._pipeline import PIPELINE_SCHEMA, FetchStep, execute_pipeline

MAX_REPAIRS = 2
MAX_TOOL_BODY_CHARS = 32_000
# A log event carries at most 2,000 characters of a line: the tool records' previews keep them whole JSON within it.
ARGUMENTS_PREVIEW_CHARS = 500
RESULT_PREVIEW_CHARS = 1_000
_UNSET: Any = object()


@dataclass
class FinishState:
    """What ``finish`` decided: the accepted result, or after too many invalid ones the failure."""

    result: Any = _UNSET
    repairs: int = 0
    failure: AgentError | None = None

    @property
    def done(self) -> bool:
        return self.result is not _UNSET or self.failure is not None


@dataclass
class ToolContext:
    """What tools may use: the job, the channel to the worker (network and API go through it), the log writer."""

    job: AgentJob
    worker: WorkerChannel
    writer: ProtocolWriter
    finish: FinishState = field(default_factory=FinishState)
    # Model and tool calls become spans when the worker passed a trace (TRACEPARENT).
    tracing: Tracing | None = None


class Tool(Protocol):
    """A tool the model can call; ``parameters`` is the JSON Schema of its arguments, sent to the model as is."""

    name: str
    description: str
    parameters: dict[str, Any]

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        """Do the work; return JSON-able content for the model, or raise ``AobError`` to report an error to it."""
        ...


class ToolRegistry:
    """The tools by name; schemas come out sorted by name so the request prefix stays byte-identical."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool

    @property
    def names(self) -> list[str]:
        return sorted(self._tools)

    def select(self, names: Iterable[str] | None) -> ToolRegistry:
        """The registry cut to ``names`` (None: all) plus ``finish``; raise ``ValidationFailed`` for unknown names."""
        if names is None:
            return ToolRegistry(self._tools.values())
        wanted = [*dict.fromkeys(names), "finish"]
        unknown = [name for name in wanted if name not in self._tools]
        if unknown:
            raise ValidationFailed(
                [f"tools: unknown tool {name!r} (known: {', '.join(self.names)})" for name in unknown]
            )
        return ToolRegistry(self._tools[name] for name in dict.fromkeys(wanted))

    def schemas(self) -> list[dict[str, Any]]:
        """The ``tools`` parameter of a chat completion request."""
        return [
            {
                "type": "function",
                "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
            }
            for tool in (self._tools[name] for name in self.names)
        ]

    async def call(self, call: ToolCall, ctx: ToolContext, *, step: int) -> Any:
        """Run one tool call; any problem comes back as ``{"error": {type, message}}`` content for the model.

        Logged twice for the log's readers: ``tool_call`` with the arguments, then ``tool_result`` with the result.
        """
        ctx.writer.log(
            "INFO",
            "tool started",
            event="tool_call",
            step=step,
            tool=call.name,
            call_id=call.id,
            arguments=preview(call.arguments, ARGUMENTS_PREVIEW_CHARS),
        )
        started = time.monotonic()
        try:
            content = await self._run(call, ctx)
        except AobError as exc:
            content = {"error": {"type": getattr(exc, "error_type", exc.code), "message": exc.message}}
        except Exception as exc:
            # A tool's own bug must not end the agent: the model sees the error, the log keeps the type.
            content = {"error": {"type": "tool_crashed", "message": f"{type(exc).__name__}: {exc}"}}
        failed = isinstance(content, dict) and set(content) == {"error"}
        ctx.writer.log(
            "WARNING" if failed else "INFO",
            "tool call",
            event="tool_result",
            step=step,
            tool=call.name,
            call_id=call.id,
            ok=not failed,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
            result=preview(content, RESULT_PREVIEW_CHARS),
            **({"error": content["error"]["message"]} if failed else {}),
        )
        return content

    async def _run(self, call: ToolCall, ctx: ToolContext) -> Any:
        tool = self._tools.get(call.name)
        if tool is None:
            raise ValidationFailed([f"unknown tool {call.name!r} (available: {', '.join(self.names)})"])
        try:
            args = json.loads(call.arguments)
        except ValueError as exc:
            raise ValidationFailed([f"{call.name}: arguments are not valid JSON ({exc})"]) from None
        if not isinstance(args, dict):
            raise ValidationFailed([f"{call.name}: arguments must be a JSON object, got {type(args).__name__}"])
        errors = [
            f"{error.at(call.name) if error.parts else call.name + '.(arguments)'}: {error.message}"
            for error in instance_errors(tool.parameters, args)
        ]
        if errors:
            raise ValidationFailed(errors)
        return await tool.run(args, ctx)


def preview(value: Any, chars: int) -> str:
    """``value`` as text (JSON unless a string), cut to ``chars`` characters with an ellipsis when longer."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _shown_body(body: Any) -> tuple[Any, bool]:
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    if len(text) <= MAX_TOOL_BODY_CHARS:
        return body, False
    return text[:MAX_TOOL_BODY_CHARS], True


class HttpRequestTool:
    name = "http_request"
    description = (
        "Send an HTTP request (the worker sends it through the platform's SSRF guard). body: a string, or JSON sent as "
        "application/json. Returns {status, content_type, body} with a JSON body parsed."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "method": {"type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]},
            "url": {"type": "string"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {},
        },
        "required": ["method", "url"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        body = args.get("body")
        call = HttpCall(
            method=args["method"],
            url=args["url"],
            headers=args.get("headers"),
            body=body,
            body_format="text" if isinstance(body, str) else "json",
        )
        response = await ctx.worker.http(call)
        ctx.writer.log("INFO", "http response", method=args["method"], url=response.url, status=response.status)
        shown, truncated = _shown_body(response.body)
        result = {"status": response.status, "content_type": response.content_type, "body": shown}
        return {**result, "truncated": True} if truncated else result


class GetContextTool:
    name = "get_context"
    description = "Return the run's inputs and the outputs of the upstream nodes: {inputs, upstream: {node: output}}."
    parameters: dict[str, Any] = {"type": "object", "properties": {}, "additionalProperties": False}

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        return ctx.job.context.model_dump()


class ExecutePipelineTool:
    name = "execute_pipeline"
    description = (
        "Fetch JSON rows over HTTP and filter, sort, select and cut them without sending them all to you. "
        "Returns {rows, count}."
    )
    parameters: dict[str, Any] = PIPELINE_SCHEMA

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        async def fetch(step: FetchStep) -> Any:
            call = HttpCall(method=step.method, url=step.url, headers=step.headers, body=step.body)
            response = await ctx.worker.http(call)
            if response.status >= 400:
                raise ValidationFailed([f"fetch: {step.method} {response.url} answered {response.status}"])
            return response.body

        return await execute_pipeline(args["steps"], fetch)


class PatchWorkflowTool:
    name = "patch_workflow"
    description = (
        "Change this run's workflow with RFC 6902 JSON Patch ops against its definition (e.g. add nodes after "
        "this one). Returns the new IR version, or the API's error so you can correct the ops."
    )
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {
            "ops": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "op": {"type": "string", "enum": ["add", "remove", "replace", "move", "copy", "test"]},
                        "path": {"type": "string"},
                        "value": {},
                        "from": {"type": "string"},
                    },
                    "required": ["op", "path"],
                },
            },
            "reason": {"type": "string"},
        },
        "required": ["ops"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        if not ctx.job.patch:
            raise ValidationFailed(["patch_workflow: this node may not patch its workflow"])
        response = await ctx.worker.patch(PatchCall(ops=args["ops"], reason=args.get("reason")))
        body = response.body
        ctx.writer.log("INFO", "patch_workflow answered", status=response.status, ops=len(args["ops"]))
        if 200 <= response.status < 300:
            return {"applied": True, **body} if isinstance(body, dict) else {"applied": True, "response": body}
        # The API's error body tells the model what to fix (unknown node, cycle, agent limit...).
        return {"applied": False, "status": response.status, "error": body}


class FinishTool:
    name = "finish"
    description = "End the task with its result (any JSON). If an output schema applies, the result must match it."
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {"result": {}},
        "required": ["result"],
        "additionalProperties": False,
    }

    async def run(self, args: dict[str, Any], ctx: ToolContext) -> Any:
        result = args["result"]
        schema = ctx.job.output_schema
        errors = [] if schema is None else _schema_errors(schema, result)
        if not errors:
            ctx.finish.result = result
            return {"accepted": True}
        if ctx.finish.repairs >= MAX_REPAIRS:
            ctx.finish.failure = AgentError(
                type="invalid_output",
                message=f"finish result failed the output schema after {MAX_REPAIRS} repair attempts: {errors[0]}",
                details={"errors": errors, "raw_output": result},
            )
            return {"accepted": False, "errors": errors}
        ctx.finish.repairs += 1
        return {
            "accepted": False,
            "errors": errors,
            "instruction": (
                f"The result does not match the output schema. Call finish again with a corrected result "
                f"(repair {ctx.finish.repairs} of {MAX_REPAIRS}). Schema: {json.dumps(schema)}"
            ),
        }


def _schema_errors(schema: dict[str, Any], value: Any) -> list[str]:
    return [
        f"result{''.join(f'[{part!r}]' for part in error.parts)}: {error.message}"
        for error in instance_errors(schema, value)
    ]


def default_registry() -> ToolRegistry:
    """Every built-in tool."""
    return ToolRegistry([HttpRequestTool(), GetContextTool(), ExecutePipelineTool(), PatchWorkflowTool(), FinishTool()])
