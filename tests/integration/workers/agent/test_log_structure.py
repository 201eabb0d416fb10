"""What an agent's log tells its readers: model text streamed in pieces at word boundaries, tool calls with their
arguments and results, and each model reply's token usage, in the stored stream and in the ``log`` events."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from devstack.llm_scripted import ScriptedLLM
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from workers.agent import AgentHandler

TEXT = "Reading **the context** first, then I finish with `a result`."
STEPS: list[dict[str, Any]] = [
    {
        "text": TEXT,
        "tool_calls": [{"name": "get_context", "arguments": {}}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30},
    },
    {
        "tool_calls": [{"name": "finish", "arguments": {"result": {"ok": True}}}],
        "usage": {"prompt_tokens": 200, "completion_tokens": 10},
    },
]


async def run_agent(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> tuple[Engine, str]:
    async with ScriptedLLM(STEPS) as llm:
        agent = deployment.replace(llm_base_url=llm.base_url, llm_api_key="scripted-key-0123456789")
        async with Engine(
            agent, redis, handlers=[AgentHandler(agent.worker(), pg_pool, redis)], pool=pg_pool
        ) as engine:
            definition = {
                "name": "log-structure",
                "nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "go", "tools": ["get_context"]}}],
                "edges": [],
            }
            run_id = await engine.submit(definition, {"city": "Oslo"})
            assert await engine.wait_ended(run_id, timeout_s=60) == "succeeded", await engine.node_states(run_id)
    return engine, run_id


def records(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [json.loads(entry["line"]) for entry in entries if entry["kind"] == "log"]


async def test_text_streams_in_word_pieces_and_tools_and_usage_are_structured(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    engine, run_id = await run_agent(deployment, redis, pg_pool)
    entries = [fields for _, fields in await redis.xrange(engine.keys.logs(run_id, "agent"))]
    text = [entry for entry in entries if entry["kind"] == "text"]
    # The first words go out at once, before the line is complete; the pieces join back into the model's text.
    assert text[0]["line"] == "Reading " and text[0]["more"] == "1"
    assert "".join(entry["line"] + ("" if entry.get("more") else "\n") for entry in text) == TEXT + "\n"
    assert all(entry["line"].endswith((" ", "\t")) for entry in text if entry.get("more"))

    logged = records(entries)
    call = next(r for r in logged if r.get("event") == "tool_call")
    assert (call["tool"], call["arguments"], call["step"]) == ("get_context", "{}", 1)
    result = next(r for r in logged if r.get("event") == "tool_result" and r["tool"] == "get_context")
    assert result["call_id"] == call["call_id"] and result["ok"] is True
    assert json.loads(result["result"])["inputs"] == {"city": "Oslo"}
    usage = [r for r in logged if r.get("event") == "usage"]
    assert [(u["prompt_tokens"], u["completion_tokens"], u["tokens"]) for u in usage] == [
        (120, 30, 150),
        (200, 10, 210),
    ]

    events = [e for e in await engine.events(run_id) if e["type"] == "log"]
    items = [item for event in events for item in event["data"].get("lines", [])]
    assert items[[item["line"] for item in items].index("Reading ")].get("more") is True
    assert not any("more" in item for item in items if item["kind"] != "text")


async def test_a_long_tool_result_is_cut_to_a_preview_that_keeps_the_record_whole(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with ScriptedLLM(
        [
            {
                "tool_calls": [
                    {"name": "get_context", "arguments": {"pad": "x" * 3000}},
                    {"name": "get_context", "arguments": {}},
                ]
            },
            {"tool_calls": [{"name": "finish", "arguments": {"result": 1}}]},
        ]
    ) as llm:
        agent = deployment.replace(llm_base_url=llm.base_url, llm_api_key="scripted-key-0123456789")
        async with Engine(
            agent, redis, handlers=[AgentHandler(agent.worker(), pg_pool, redis)], pool=pg_pool
        ) as engine:
            definition = {
                "name": "long-args",
                "nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "go", "tools": ["get_context"]}}],
                "edges": [],
            }
            run_id = await engine.submit(definition, {"blob": "y" * 5000})
            assert await engine.wait_ended(run_id, timeout_s=60) == "succeeded", await engine.node_states(run_id)
    events = [e for e in await engine.events(run_id) if e["type"] == "log"]
    lines = [item["line"] for event in events for item in event["data"].get("lines", []) if item["kind"] == "log"]
    logged = [json.loads(line) for line in lines]  # every record fits its event whole
    call = next(r for r in logged if r.get("event") == "tool_call")
    assert len(call["arguments"]) == 500 and call["arguments"].endswith("…")
    result = next(r for r in logged if r.get("event") == "tool_result" and r["ok"])
    assert len(result["result"]) == 1000 and result["result"].endswith("…")
