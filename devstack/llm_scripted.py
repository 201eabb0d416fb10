"""A scripted OpenAI-compatible chat server: the agent tests' model and the offline demo provider of ``aob up``.

Replies are scripted in advance as steps (text, tool calls, HTTP errors, usage figures). In ``queue`` mode each
request takes the first pending step whose ``when`` matches the last message; in ``conversation`` mode the step is
picked by how many assistant turns the conversation already has, so any number of runs can share one server.
Run it with ``python -m devstack.llm_scripted --port 8090 [--script steps.json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ScriptMode = Literal["queue", "conversation"]
SCRIPTED_MODEL = "aob-scripted"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScriptedToolCall(_Strict):
    """A tool call to make; ``arguments`` given as a string are sent verbatim (e.g. to send invalid JSON)."""

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    id: str | None = None


class ScriptedUsage(_Strict):
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)


class StepCondition(_Strict):
    """Matches the request's last message: its role and/or a substring of its content (JSON for non-strings)."""

    role: str | None = None
    contains: str | None = None


class ScriptStep(_Strict):
    """One scripted reply: text and/or tool calls, or an HTTP ``error`` (with ``retry_after`` seconds)."""

    text: str | None = None
    tool_calls: list[ScriptedToolCall] = Field(default_factory=list)
    error: int | None = Field(default=None, ge=400, le=599)
    retry_after: float | None = None
    usage: ScriptedUsage | None = None
    when: StepCondition | None = None
    delay_s: float = Field(default=0.0, ge=0)
    chunk_delay_s: float = Field(default=0.0, ge=0, description="pause between streamed chunks, as a slow model")


class ScriptUpdate(_Strict):
    """Body of ``POST /_script``: steps to append (or to replace the script with), optionally a new mode."""

    steps: list[ScriptStep]
    replace: bool = False
    mode: ScriptMode | None = None


class ScriptFile(_Strict):
    steps: list[ScriptStep]
    mode: ScriptMode = "queue"


_STEPS = TypeAdapter(list[ScriptStep])

DEMO_SCRIPT: list[dict[str, Any]] = [
    {
        "text": "Hello! I am the aob demo agent (a scripted model, no provider key needed). Reading my context.\n",
        "tool_calls": [{"name": "get_context", "arguments": {}}],
    },
    {
        "text": "I have the run's inputs and upstream outputs. Finishing.\n",
        "tool_calls": [
            {
                "name": "finish",
                "arguments": {"result": {"message": "Hello from the aob demo agent", "demo": True}},
            }
        ],
    },
]
"""The default script of the offline demo (conversation mode): greet, call get_context, finish."""


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return json.dumps(message)
    content = message.get("content")
    text = content if isinstance(content, str) else json.dumps(content) if content is not None else ""
    if message.get("tool_calls"):
        text += json.dumps(message["tool_calls"])
    return text


def _matches(condition: StepCondition | None, messages: Sequence[Any]) -> bool:
    if condition is None:
        return True
    last = messages[-1] if messages else {}
    if condition.role is not None and (not isinstance(last, dict) or last.get("role") != condition.role):
        return False
    return condition.contains is None or condition.contains in _message_text(last)


class Script:
    """The scripted steps, the requests received so far and the picking rule."""

    def __init__(self, steps: Sequence[ScriptStep] = (), mode: ScriptMode = "queue") -> None:
        self.steps = list(steps)
        self.mode: ScriptMode = mode
        self.requests: list[dict[str, Any]] = []

    def extend(self, steps: Sequence[ScriptStep]) -> None:
        self.steps.extend(steps)

    def next_step(self, messages: Sequence[Any]) -> ScriptStep | None:
        """The step answering ``messages``; None when the script has none left that matches."""
        if self.mode == "conversation":
            if not self.steps:
                return None
            turns = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
            return self.steps[min(turns, len(self.steps) - 1)]
        for index, step in enumerate(self.steps):
            if _matches(step.when, messages):
                return self.steps.pop(index)
        return None


def _error(status: int, message: str, error_type: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return JSONResponse(body, status, headers=headers)


def _estimate_tokens(value: Any) -> int:
    return max(1, len(json.dumps(value, default=str)) // 4)


class _Reply:
    """The reply a step produces, rendered either as one ``chat.completion`` or as SSE chunks."""

    _ids = itertools.count(1)

    def __init__(self, step: ScriptStep, body: dict[str, Any]) -> None:
        number = next(self._ids)
        self.id = f"chatcmpl-scripted-{number}"
        self.model = str(body.get("model") or SCRIPTED_MODEL)
        self.created = int(time.time())
        self.text = step.text
        self.calls = [
            {
                "id": call.id or f"call_{number}_{index}",
                "name": call.name,
                "arguments": call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments),
            }
            for index, call in enumerate(step.tool_calls)
        ]
        self.finish_reason = "tool_calls" if self.calls else "stop"
        if step.usage is not None:
            prompt, completion = step.usage.prompt_tokens, step.usage.completion_tokens
        else:
            prompt = _estimate_tokens(body.get("messages", [])) + _estimate_tokens(body.get("tools", []))
            completion = _estimate_tokens([self.text, self.calls])
        self.usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text, "refusal": None}
        if self.calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in self.calls
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish_reason}],
            "usage": self.usage,
        }

    def chunks(self, include_usage: bool) -> list[dict[str, Any]]:
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        # Word-sized pieces, as real providers stream, so clients must join text and arguments themselves.
        deltas += [{"content": piece} for piece in re.findall(r"\S+\s*|\s+", self.text or "")]
        for index, call in enumerate(self.calls):
            deltas.append(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": ""},
                        }
                    ]
                }
            )
            half = len(call["arguments"]) // 2
            for part in (call["arguments"][:half], call["arguments"][half:]):
                deltas.append({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
        chunks = [self._chunk(delta, None, include_usage) for delta in deltas]
        chunks.append(self._chunk({}, self.finish_reason, include_usage))
        if include_usage:
            chunks.append({**self._chunk({}, None, include_usage), "choices": [], "usage": self.usage})
        return chunks

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None, include_usage: bool) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            chunk["usage"] = None
        return chunk


async def _sse(chunks: list[dict[str, Any]], chunk_delay_s: float) -> AsyncIterator[bytes]:
    for index, chunk in enumerate(chunks):
        if chunk_delay_s and index:
            await asyncio.sleep(chunk_delay_s)
        yield f"data: {json.dumps(chunk)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def create_app(script: Script) -> Starlette:
    """The ASGI app serving ``script``: ``/v1/chat/completions``, ``/v1/models``, ``/_script``, ``/_requests``."""

    async def chat_completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "request body is not JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "expected a JSON object with a 'messages' list", "invalid_request_error")
        script.requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "body": body, "at": time.time()}
        )
        step = script.next_step(body["messages"])
        if step is None:
            message = f"scripted LLM: no scripted step left that matches request {len(script.requests)}"
            return _error(400, message, "invalid_request_error")
        if step.delay_s:
            await asyncio.sleep(step.delay_s)
        if step.error is not None:
            headers = {"retry-after": f"{step.retry_after:g}"} if step.retry_after is not None else None
            kind = "rate_limit_error" if step.error == 429 else "server_error"
            return _error(step.error, f"scripted error {step.error}", kind, headers)
        reply = _Reply(step, body)
        if not body.get("stream"):
            return JSONResponse(reply.completion())
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return StreamingResponse(_sse(reply.chunks(include_usage), step.chunk_delay_s), media_type="text/event-stream")

    async def models(request: Request) -> Response:
        model = {"id": SCRIPTED_MODEL, "object": "model", "created": 0, "owned_by": "aob"}
        return JSONResponse({"object": "list", "data": [model]})

    async def set_script(request: Request) -> Response:
        update = ScriptUpdate.model_validate(await request.json())
        if update.replace:
            script.steps = []
        if update.mode is not None:
            script.mode = update.mode
        script.extend(update.steps)
        return JSONResponse({"mode": script.mode, "pending": len(script.steps)})

    async def received(request: Request) -> Response:
        return JSONResponse(script.requests)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_script", set_script, methods=["POST"]),
            Route("/_requests", received, methods=["GET"]),
        ]
    )


def load_script(path: Path) -> Script:
    """A script file: a list of steps (queue mode) or ``{"mode", "steps"}``."""
    raw = json.loads(path.read_text())
    if isinstance(raw, list):
        return Script(_STEPS.validate_python(raw))
    parsed = ScriptFile.model_validate(raw)
    return Script(parsed.steps, parsed.mode)


def demo_script() -> Script:
    return Script(_STEPS.validate_python(DEMO_SCRIPT), mode="conversation")


class ScriptedLLM:
    """The scripted server in this event loop on 127.0.0.1 (port 0 by default), for ``async with`` in tests."""

    def __init__(self, steps: Sequence[dict[str, Any]] = (), *, mode: ScriptMode = "queue", port: int = 0) -> None:
        self._script = Script(_STEPS.validate_python(list(steps)), mode)
        self._port = port
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.base_url = ""

    def script(self, steps: Sequence[dict[str, Any]]) -> None:
        """Append steps to the script."""
        self._script.extend(_STEPS.validate_python(list(steps)))

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Every chat request received: ``{path, headers, body, at}`` (``at``: epoch seconds)."""
        return self._script.requests

    @property
    def pending(self) -> list[ScriptStep]:
        return self._script.steps

    async def __aenter__(self) -> ScriptedLLM:
        config = uvicorn.Config(
            create_app(self._script),
            host="127.0.0.1",
            port=self._port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("scripted LLM server stopped before starting")
            await asyncio.sleep(0.01)
        port = int(self._server.servers[0].sockets[0].getsockname()[1])
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None and self._task is not None:
            # Scripted delays may still be sleeping in handlers; a test fixture need not wait for them.
            self._server.should_exit = self._server.force_exit = True
            await self._task


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a script file (or the demo script) until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m devstack.llm_scripted", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--script", type=Path, help="JSON file: a list of steps or {mode, steps}; default: the demo")
    args = parser.parse_args(argv)
    script = load_script(args.script) if args.script else demo_script()
    uvicorn.run(create_app(script), host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
