"""End to end: the real agent program against the scripted model, through the real coordinator, worker and API."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from devstack.llm_scripted import ScriptedLLM
from tests.support.api import served_api
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.agent import AgentHandler

LLM_KEY = "scripted-llm-key-abcdef123456"


@pytest.fixture
async def data_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A local HTTP server answering JSON; yields its URL and the request lines it received."""
    seen: list[str] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        seen.append(request.split(b"\r\n", 1)[0].decode())
        body = json.dumps({"city": "Oslo", "temp_c": 21}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", seen


def with_llm(deployment: Deployment, llm: ScriptedLLM, **overrides: Any) -> Deployment:
    return deployment.replace(llm_base_url=llm.base_url, llm_api_key=LLM_KEY, **overrides)


async def test_an_agent_fetches_then_finishes_and_a_downstream_node_uses_its_output(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    data_server: tuple[str, list[str]],
) -> None:
    url, seen = data_server
    steps: list[dict[str, Any]] = [
        {
            "text": "Fetching the weather.\n",
            "tool_calls": [{"name": "http_request", "arguments": {"method": "GET", "url": f"{url}/weather"}}],
        },
        {"tool_calls": [{"name": "finish", "arguments": {"result": {"city": "Oslo", "temp_c": 21}}}]},
    ]
    async with ScriptedLLM(steps) as llm:
        agent = with_llm(deployment, llm, http_allowlist=url.removeprefix("http://"))
        handler = AgentHandler(agent.worker(), pg_pool, redis)
        async with Engine(agent, redis, handlers=[handler], pool=pg_pool) as engine:
            definition = {
                "name": "weather",
                "nodes": [
                    {
                        "id": "agent",
                        "type": "agent",
                        "config": {"prompt": "Weather in {{ inputs.city }}?", "tools": ["http_request", "finish"]},
                    },
                    {
                        "id": "report",
                        "type": "transform",
                        "config": {"output": "{{ nodes.agent.output.city }}: {{ nodes.agent.output.temp_c }} C"},
                    },
                ],
                "edges": [{"from": "agent", "to": "report"}],
            }
            run_id = await engine.submit(definition, {"city": "Oslo"})
            assert await engine.wait_ended(run_id, timeout_s=60) == "succeeded", await engine.node_states(run_id)
            assert await engine.output(run_id, "agent") == {"city": "Oslo", "temp_c": 21}
            assert await engine.output(run_id, "report") == "Oslo: 21 C"
    assert seen == ["GET /weather HTTP/1.1"]
    tool_result = llm.requests[1]["body"]["messages"][-1]
    assert tool_result["role"] == "tool" and "Oslo" in tool_result["content"]
    entries = await redis.xrange(engine.keys.logs(run_id, "agent"))
    # A streamed piece of a line (``more``) is continued by the next entry.
    logged = "".join(fields["line"] + ("" if fields.get("more") else "\n") for _, fields in entries)
    assert "Fetching the weather." in logged
    assert LLM_KEY not in logged


def new_node(node_id: str, node_type: str = "transform") -> dict[str, Any]:
    config: dict[str, Any] = {"output": f"made by {node_id}"} if node_type == "transform" else {"prompt": "x"}
    return {"id": node_id, "type": node_type, "config": config}


def add(path: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


async def test_an_agent_patches_its_run_with_two_nodes_after_a_refused_patch(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    invalid = [add("/nodes/-", new_node("n1")), add("/edges/-", {"from": "agent", "to": "nowhere"})]
    too_many_agents = [add("/nodes/-", new_node(f"a{i}", "agent")) for i in range(5)]
    valid = [
        add("/nodes/-", new_node("n1")),
        add("/nodes/-", new_node("n2")),
        add("/edges/-", {"from": "agent", "to": "n1"}),
        add("/edges/-", {"from": "n1", "to": "n2"}),
    ]
    steps = [
        {"tool_calls": [{"name": "patch_workflow", "arguments": {"ops": invalid, "reason": "extend"}}]},
        {"tool_calls": [{"name": "patch_workflow", "arguments": {"ops": too_many_agents}}]},
        {"tool_calls": [{"name": "patch_workflow", "arguments": {"ops": valid, "reason": "corrected"}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"result": "patched"}}]},
    ]
    async with ScriptedLLM(steps) as llm, served_api(deployment.api(), redis, pg_pool) as api_url:
        agent = with_llm(deployment, llm, api_url=api_url)
        handler = AgentHandler(agent.worker(), pg_pool, redis)
        async with (
            Engine(agent, redis, handlers=[handler], pool=pg_pool) as engine,
            httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client,
        ):
            definition = {
                "nodes": [
                    {
                        "id": "agent",
                        "type": "agent",
                        "config": {"prompt": "Extend the workflow.", "tools": ["patch_workflow"]},
                    }
                ],
                "edges": [],
            }
            created = await client.post(
                "/api/v1/workflows", json={"name": f"patcher-{uuid.uuid4().hex[:8]}", "definition": definition}
            )
            assert created.status_code == 201, created.text
            started = await client.post("/api/v1/runs", json={"workflow_id": created.json()["id"], "inputs": {}})
            assert started.status_code == 201, started.text
            run_id = started.json()["id"]
            assert await engine.wait_ended(run_id, timeout_s=60) == "succeeded", await engine.node_states(run_id)
            statuses = await engine.statuses(run_id)
            assert statuses == {"agent": "succeeded", "n1": "succeeded", "n2": "succeeded"}
            assert await engine.output(run_id, "n2") == "made by n2"
            patched = [e for e in await engine.events(run_id) if e["type"] == "workflow_patched"]
            assert len(patched) == 1

            async def recorded() -> list[Any]:
                response = await client.get(f"/api/v1/runs/{run_id}/patches")
                items: list[Any] = response.json()["items"]
                assert len(items) == 1
                return items

            (patch,) = await eventually(recorded, 10)
            assert patch["reason"] == "corrected" and patch["author"] == f"key:agent:{run_id}:agent"

    answers = [json.loads(r["body"]["messages"][-1]["content"]) for r in llm.requests[1:4]]
    assert answers[0]["applied"] is False and "nowhere" in json.dumps(answers[0]["error"])
    assert answers[1]["applied"] is False and "agent" in json.dumps(answers[1]["error"]).lower()
    assert answers[2]["applied"] is True
