"""OpenTelemetry end to end: one run's spans from the API, the coordinator, the workers and the agent program reach a
local OTLP/HTTP receiver in one trace, and the HTTP node's request carries that trace's ``traceparent``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from common.tracing import TracingFields, start_tracing
from devstack.llm_scripted import ScriptedLLM
from tests.support.api import served_api
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from workers.agent import AgentHandler
from workers.http import http_handler

LLM_KEY = "scripted-llm-key-abcdef123456"


@pytest.fixture
async def target() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server answering JSON; yields its URL and the headers of each request it received."""
    seen: list[dict[str, str]] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")[1:]
        seen.append({k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head if line)})
        body = b'{"ok": true}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n")
        writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


async def test_one_run_is_one_trace_across_api_coordinator_workers_and_the_agent_program(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    target: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = target
    steps = [{"tool_calls": [{"name": "finish", "arguments": {"result": {"answer": 42}}}]}]
    with OtlpReceiver() as receiver:
        fields = TracingFields(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        coordinator_tracing = start_tracing("aob-coordinator", fields)
        worker_tracing = start_tracing("aob-worker", fields)
        assert coordinator_tracing is not None and worker_tracing is not None
        api_settings = deployment.api().model_copy(update={"otel_exporter_otlp_endpoint": receiver.endpoint})
        traced = deployment.replace(llm_api_key=LLM_KEY, http_allowlist=url.removeprefix("http://"))
        async with ScriptedLLM(steps) as llm, served_api(api_settings, redis, pg_pool) as api_url:
            worker_settings = traced.replace(llm_base_url=llm.base_url).worker()
            agent = AgentHandler(worker_settings, pg_pool, redis, tracing=worker_tracing)
            async with (
                http_handler(worker_settings) as fetcher,
                Engine(
                    traced,
                    redis,
                    handlers=[agent, fetcher],
                    pool=pg_pool,
                    coordinator_tracing=coordinator_tracing,
                    worker_tracing=worker_tracing,
                ) as engine,
                httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client,
            ):
                definition = {
                    "nodes": [
                        {"id": "agent", "type": "agent", "config": {"prompt": "Answer.", "tools": ["finish"]}},
                        {"id": "fetch", "type": "http", "config": {"method": "GET", "url": f"{url}/hook"}},
                    ],
                    "edges": [{"from": "agent", "to": "fetch"}],
                }
                name = f"traced-{uuid.uuid4().hex[:8]}"
                created = await client.post("/api/v1/workflows", json={"name": name, "definition": definition})
                assert created.status_code == 201, created.text
                started = await client.post("/api/v1/runs", json={"workflow_id": created.json()["id"], "inputs": {}})
                assert started.status_code == 201, started.text
                run_id = started.json()["id"]
                assert await engine.wait_ended(run_id, timeout_s=60) == "succeeded", await engine.node_states(run_id)
        # Flushes what the batch processors still hold (the API's went with its lifespan).
        coordinator_tracing.shutdown()
        worker_tracing.shutdown()

        async def whole_trace() -> list[ReceivedSpan]:
            starts = [s for s in receiver.spans if s.name == "aob.run.start" and s.attributes["aob.run_id"] == run_id]
            assert len(starts) == 1, starts
            trace = receiver.of_trace(starts[0].trace_id)
            assert {span.service for span in trace} == {
                "aob-orchestrator",
                "aob-coordinator",
                "aob-worker",
                "aob-agent",
            }
            return trace

        trace = await eventually(whole_trace, 10)
    (start,) = [span for span in trace if span.name == "aob.run.start"]
    by_id = {span.span_id: span for span in trace}
    # The run's trace is the submitting request's: the run's start span is a child of the API's server span.
    request = by_id[start.parent_span_id]
    assert request.service == "aob-orchestrator" and "/api/v1/runs" in request.name
    nodes = {span.attributes["aob.node_id"]: span for span in trace if span.name.startswith("aob.node ")}
    assert set(nodes) == {"agent", "fetch"}
    for span in nodes.values():
        assert span.parent_span_id == start.span_id
        assert span.attributes["aob.attempt"] == 1 and span.attributes["aob.retries"] == 0
        assert span.attributes["aob.queue_ms"] >= 0 and span.attributes["aob.exec_ms"] >= 0
        assert span.attributes["aob.outcome"] == "succeeded"
    applied = [span for span in trace if span.service == "aob-coordinator"]
    assert {span.attributes["aob.node_id"] for span in applied} == {"agent", "fetch"}
    # The agent program's spans: its own, then a model call and a tool call under it.
    program = {span.name: span for span in trace if span.service == "aob-agent"}
    assert program["aob.agent"].parent_span_id == nodes["agent"].span_id
    assert program["aob.agent.model_call"].parent_span_id == program["aob.agent"].span_id
    assert program["aob.agent.tool finish"].parent_span_id == program["aob.agent"].span_id
    # The HTTP node's request carried its attempt's span as the parent.
    (headers,) = seen
    assert headers["traceparent"].startswith(f"00-{start.trace_id}-{nodes['fetch'].span_id}-")
