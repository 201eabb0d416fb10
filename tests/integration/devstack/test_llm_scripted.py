"""The scripted OpenAI-compatible server, driven by the real ``openai`` SDK and over its own HTTP endpoints."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from devstack.llm_scripted import DEMO_SCRIPT, SCRIPTED_MODEL, ScriptedLLM
from tests.support.eventually import eventually

TOOLS: list[Any] = [{"type": "function", "function": {"name": "finish", "parameters": {"type": "object"}}}]


def client(llm: ScriptedLLM) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-scripted", max_retries=0)


async def test_streamed_text_tool_calls_and_usage_in_openai_format() -> None:
    step = {
        "text": "Hello there, world.",
        "tool_calls": [{"name": "finish", "arguments": {"result": {"a": [1, 2]}}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3},
    }
    async with ScriptedLLM([step]) as llm, client(llm) as sdk:
        stream = await sdk.chat.completions.create(
            model="any",
            messages=[{"role": "user", "content": "hi"}],
            tools=TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello there, world."
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 3  # streamed word by word
    deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert deltas[0].id and deltas[0].function is not None and deltas[0].function.name == "finish"
    arguments = "".join(d.function.arguments or "" for d in deltas if d.function is not None)
    assert json.loads(arguments) == {"result": {"a": [1, 2]}}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.total_tokens) == (7, 10)


async def test_chunk_delay_pauses_between_streamed_chunks() -> None:
    async with ScriptedLLM([{"text": "slow words here", "chunk_delay_s": 60}]) as llm, client(llm) as sdk:
        stream = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
        chunks = aiter(stream)
        first = await anext(chunks)
        assert first.choices[0].delta.role == "assistant"
        # The next chunk waits its minute: nowhere near arriving within half a second.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(chunks), 0.5)
        await stream.close()


async def test_non_streaming_completion_and_models() -> None:
    async with ScriptedLLM([{"text": "plain"}]) as llm, client(llm) as sdk:
        completion = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        models = await sdk.models.list()

    assert completion.choices[0].message.content == "plain"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert [model.id for model in models.data] == [SCRIPTED_MODEL]


async def test_errors_carry_status_and_retry_after() -> None:
    async with ScriptedLLM([{"error": 429, "retry_after": 2}, {"error": 500}]) as llm, client(llm) as sdk:
        with pytest.raises(openai.RateLimitError) as limited:
            await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.InternalServerError):
            await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True)
        with pytest.raises(openai.BadRequestError, match="no scripted step left"):
            await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])

    assert limited.value.response.headers["retry-after"] == "2"


async def test_steps_can_wait_for_a_matching_last_message() -> None:
    steps: list[dict[str, Any]] = [
        {"when": {"role": "tool", "contains": "42"}, "text": "saw 42"},
        {"text": "first"},
    ]
    async with ScriptedLLM(steps) as llm, client(llm) as sdk:
        first = await sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "go"}])
        messages: list[Any] = [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
            {"role": "tool", "tool_call_id": "c1", "content": '{"answer": 42}'},
        ]
        second = await sdk.chat.completions.create(model="m", messages=messages)

    assert first.choices[0].message.content == "first"
    assert second.choices[0].message.content == "saw 42"


def _call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "get_context", "arguments": "{}"}}


async def test_conversation_mode_answers_any_number_of_conversations_by_turn() -> None:
    async with ScriptedLLM(DEMO_SCRIPT, mode="conversation") as llm, client(llm) as sdk:
        replies = await asyncio.gather(
            *(sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]) for _ in range(3))
        )
        conversation: list[Any] = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": None, "tool_calls": [_call("c1")]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        ]
        later = await sdk.chat.completions.create(model="m", messages=conversation)

    assert {r.choices[0].message.tool_calls[0].function.name for r in replies} == {"get_context"}  # type: ignore[index,union-attr]
    assert later.choices[0].message.tool_calls[0].function.name == "finish"  # type: ignore[index,union-attr]


async def test_script_and_requests_over_http() -> None:
    async with ScriptedLLM() as llm, httpx.AsyncClient(base_url=llm.base_url.removesuffix("/v1")) as http:
        answer = await http.post("/_script", json={"steps": [{"text": "one"}, {"text": "two"}]})
        assert answer.json() == {"mode": "queue", "pending": 2}
        await http.post("/_script", json={"steps": [{"text": "only"}], "replace": True})
        reply = await http.post(
            "/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "q"}]}
        )
        received = (await http.get("/_requests")).json()

    assert reply.json()["choices"][0]["message"]["content"] == "only"
    assert [r["body"]["messages"][0]["content"] for r in received] == ["q"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_the_command_line_serves_a_script_file(tmp_path: Path) -> None:
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"mode": "queue", "steps": [{"text": "from a file"}]}))
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devstack.llm_scripted", "--port", str(port), "--script", str(script)
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

            async def answered() -> httpx.Response:
                try:
                    return await http.post("/v1/chat/completions", json={"model": "m", "messages": []})
                except httpx.TransportError as exc:
                    raise AssertionError(f"not serving yet: {exc}") from None

            reply = await eventually(answered, timeout_s=20)
        assert reply.json()["choices"][0]["message"]["content"] == "from a file"
    finally:
        proc.terminate()
        await proc.wait()
