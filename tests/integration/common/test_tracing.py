"""OpenTelemetry end to end: one run's spans from the API, the coordinator, the workers and the agent program reach a
local OTLP/HTTP receiver in one trace, and the HTTP node's request carries that trace's ``traceparent``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

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
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR


@pytest.fixture
async def target() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server answering JSON (503 under ``/fail``); yields its URL and each request's headers."""
    seen: list[dict[str, str]] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, *head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        seen.append({k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head if line)})
        status = "503 Service Unavailable" if " /fail" in request_line else "200 OK"
        body = b'{"ok": true}'
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n".encode())
        writer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", seen


@dataclass
class Traced:
    """Services exporting to ``receiver``: the API at ``client``, a coordinator and a worker in ``engine``."""

    receiver: OtlpReceiver
    client: httpx.AsyncClient
    engine: Engine

    async def run(self, definition: dict[str, Any]) -> tuple[str, str]:
        """Start ``definition`` through the API and wait for its end; returns the run id and its status."""
        name = f"traced-{uuid.uuid4().hex[:8]}"
        created = await self.client.post("/api/v1/workflows", json={"name": name, "definition": definition})
        assert created.status_code == 201, created.text
        started = await self.client.post("/api/v1/runs", json={"workflow_id": created.json()["id"], "inputs": {}})
        assert started.status_code == 201, started.text
        run_id: str = started.json()["id"]
        return run_id, await self.engine.wait_ended(run_id, timeout_s=60)


@asynccontextmanager
async def traced_services(
    deployment: Deployment, redis: aioredis.Redis, pool: asyncpg.Pool, url: str, llm_url: str
) -> AsyncIterator[Traced]:
    """The API, a coordinator and a worker (builtin, http, agent), each with its own tracer (service name)."""
    with OtlpReceiver() as receiver:
        fields = TracingFields(OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
        coordinator_tracing = start_tracing("aob-coordinator", fields)
        worker_tracing = start_tracing("aob-worker", fields)
        assert coordinator_tracing is not None and worker_tracing is not None
        api_settings = deployment.api().model_copy(update={"otel_exporter_otlp_endpoint": receiver.endpoint})
        traced = deployment.replace(llm_base_url=llm_url, llm_api_key=LLM_KEY, http_allowlist=url[len("http://") :])
        worker_settings = traced.worker()
        agent = AgentHandler(worker_settings, pool, redis, tracing=worker_tracing)
        async with (
            served_api(api_settings, redis, pool) as api_url,
            http_handler(worker_settings) as fetcher,
            Engine(
                traced,
                redis,
                handlers=[agent, fetcher],
                pool=pool,
                coordinator_tracing=coordinator_tracing,
                worker_tracing=worker_tracing,
            ) as engine,
            httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client,
        ):
            yield Traced(receiver, client, engine)
        # Flushes what the batch processors still hold (the API's went with its lifespan).
        coordinator_tracing.shutdown()
        worker_tracing.shutdown()


async def run_trace(receiver: OtlpReceiver, run_id: str, services: set[str]) -> list[ReceivedSpan]:
    """The spans of ``run_id``'s trace, once every one of ``services`` has exported some."""

    async def whole() -> list[ReceivedSpan]:
        starts = [s for s in receiver.spans if s.name == "aob.run.start" and s.attributes["aob.run_id"] == run_id]
        assert len(starts) == 1, starts
        trace = receiver.of_trace(starts[0].trace_id)
        assert {span.service for span in trace} == services
        return trace

    return await eventually(whole, 10)


async def test_one_run_is_one_trace_across_api_coordinator_workers_and_the_agent_program(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    target: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = target
    steps = [{"tool_calls": [{"name": "finish", "arguments": {"result": {"answer": 42}}}]}]
    definition = {
        "nodes": [
            {"id": "agent", "type": "agent", "config": {"prompt": "Answer.", "tools": ["finish"]}},
            {"id": "fetch", "type": "http", "config": {"method": "GET", "url": f"{url}/hook"}},
        ],
        "edges": [{"from": "agent", "to": "fetch"}],
    }
    async with ScriptedLLM(steps) as llm, traced_services(deployment, redis, pg_pool, url, llm.base_url) as traced:
        run_id, status = await traced.run(definition)
        assert status == "succeeded", await traced.engine.node_states(run_id)
    services = {"aob-orchestrator", "aob-coordinator", "aob-worker", "aob-agent"}
    trace = await run_trace(traced.receiver, run_id, services)

    by_id = {span.span_id: span for span in trace}
    (start,) = [span for span in trace if span.name == "aob.run.start"]
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


async def test_failed_attempts_are_error_spans_with_their_attempt_number_and_the_retry_decision(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    target: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = target
    fetch = {"method": "GET", "url": f"{url}/fail"}
    definition = {
        "nodes": [{"id": "fetch", "type": "http", "config": fetch, "retry": {"max_attempts": 2, "backoff_s": 0.01}}],
        "edges": [],
    }
    async with traced_services(deployment, redis, pg_pool, url, "http://127.0.0.1:9") as traced:
        run_id, status = await traced.run(definition)
        assert status == "failed"
    trace = await run_trace(traced.receiver, run_id, {"aob-orchestrator", "aob-coordinator", "aob-worker"})

    attempts = sorted(
        (span for span in trace if span.name.startswith("aob.node ")), key=lambda span: span.attributes["aob.attempt"]
    )
    assert [(s.attributes["aob.attempt"], s.attributes["aob.retries"]) for s in attempts] == [(1, 0), (2, 1)]
    for span in attempts:
        assert span.status_code == STATUS_ERROR
        assert span.attributes["aob.outcome"] == "failed" and span.attributes["aob.error_type"] == "http_status"
        assert "exception" in span.events
    decisions = sorted(
        (s.attributes["aob.attempt"], s.attributes["aob.decision"]) for s in trace if s.service == "aob-coordinator"
    )
    assert decisions == [(1, "retrying"), (2, "failed")]
    assert len(seen) == 2
