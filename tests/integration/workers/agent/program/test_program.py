"""The agent program as a real subprocess under a real worker side (which makes its model, HTTP and patch calls)
against the scripted model, a local allowlisted server and a fake API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from common.agent_protocol import RESULT_PREFIX, AgentResult, classify_line, parse_result_line
from common.keys import Keys
from devstack.llm_scripted import ScriptedLLM
from tests.support.agent_harness import WorkerSide, run_with_worker
from tests.support.streaming import serving

API_KEY = "sk-agenttest-0123456789abcdefXYZ"
API_TOKEN = "run-token-fedcba9876543210"


@dataclass
class ProgramRun:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    @property
    def result(self) -> AgentResult:
        assert self.lines and self.lines[-1].startswith(RESULT_PREFIX), self.stdout[-2000:] + self.stderr[-2000:]
        return parse_result_line(self.lines[-1])

    @property
    def logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines if classify_line(line) == "log"]

    @property
    def text(self) -> list[str]:
        return [line for line in self.lines if classify_line(line) == "text"]


Run = Callable[..., Awaitable[ProgramRun]]


def make_job(**overrides: Any) -> dict[str, Any]:
    job: dict[str, Any] = {
        "v": 1,
        "run_id": "run-1",
        "node_id": "agent",
        "prompt": "Find the weather and report it.",
        "model": "test-model",
        "max_steps": 6,
        "max_tokens": 100_000,
        "timeout_s": 20,
        "context": {"inputs": {"city": "Oslo"}, "upstream": {"fetch": {"ok": True}}},
    }
    job.update(overrides)
    return job


@pytest.fixture
def run_program(redis: aioredis.Redis, keys: Keys) -> Callable[..., Awaitable[ProgramRun]]:
    """Run the program with ``job`` under a real worker side; the provider key and API token are never printed."""

    async def run(job: dict[str, Any], llm: ScriptedLLM, **worker: Any) -> ProgramRun:
        side = WorkerSide(llm_url=llm.base_url, llm_key=API_KEY, **worker)
        code, lines = await run_with_worker(job, side, redis, keys)
        run = ProgramRun(code=code, stdout="\n".join(lines) + "\n", stderr="")
        for secret in (API_KEY, API_TOKEN):
            assert secret not in run.stdout
        return run

    return run


@contextlib.asynccontextmanager
async def local_server(app: Starlette) -> AsyncIterator[str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off")
    async with serving(config) as port:
        yield f"127.0.0.1:{port}"


def data_app() -> Starlette:
    async def weather(request: Request) -> Response:
        return JSONResponse({"city": request.query_params.get("city"), "temp_c": 21})

    async def items(request: Request) -> Response:
        rows = [{"name": f"item{i}", "price": i * 3 % 10, "tags": ["even" if i % 2 == 0 else "odd"]} for i in range(8)]
        return JSONResponse({"data": {"items": rows}})

    return Starlette(routes=[Route("/weather", weather), Route("/items", items)])


async def test_http_request_and_pipeline_run_concurrently_then_finish(run_program: Run) -> None:
    async with local_server(data_app()) as host, ScriptedLLM() as llm:
        llm.script(
            [
                {
                    "text": "Looking it up.\nTwo calls at once.",
                    "tool_calls": [
                        {
                            "name": "http_request",
                            "arguments": {"method": "GET", "url": f"http://{host}/weather?city=Oslo"},
                        },
                        # Loopback but not allowlisted: the guard refuses it and the model is told why.
                        {"name": "http_request", "arguments": {"method": "GET", "url": "http://127.0.0.1:1/x"}},
                        {
                            "name": "execute_pipeline",
                            "arguments": {
                                "steps": [
                                    {"type": "fetch", "url": f"http://{host}/items", "path": "data.items"},
                                    {"type": "filter", "field": "price", "op": ">=", "value": 3},
                                    {"type": "sort", "field": "price", "desc": True},
                                    {"type": "select", "fields": ["name", "price"]},
                                    {"type": "top_k", "k": 2},
                                ]
                            },
                        },
                    ],
                },
                {
                    "when": {"role": "tool", "contains": "item"},
                    "tool_calls": [{"name": "finish", "arguments": {"result": {"temp_c": 21}}}],
                },
            ]
        )
        run = await run_program(make_job(), llm, allowlist=[host])

    assert run.code == 0, run.stdout + run.stderr
    assert run.result.status == "succeeded"
    assert run.result.output == {"temp_c": 21}
    assert run.result.steps == 2
    assert run.result.usage.total_tokens > 0
    assert run.text == ["Looking it up.", "Two calls at once."]
    tool_logs = [log for log in run.logs if log["msg"] == "tool call"]
    assert {log["tool"] for log in tool_logs} == {"http_request", "execute_pipeline", "finish"}
    assert [log["ok"] for log in tool_logs if log["tool"] == "http_request"].count(False) == 1, run.stdout
    assert all("ts" in log and "level" in log for log in run.logs)

    first, second = (request["body"] for request in llm.requests)
    assert first["stream"] is True and first["stream_options"] == {"include_usage": True}
    assert first["messages"][0]["role"] == "system" and first["messages"][1]["content"].startswith("Find the weather")
    assert [tool["function"]["name"] for tool in first["tools"]] == sorted(
        tool["function"]["name"] for tool in first["tools"]
    )
    # The stable prefix (system prompt, prompt, tools) is byte-identical between turns, so providers can cache it.
    assert second["messages"][:2] == first["messages"] and second["tools"] == first["tools"]
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in second["messages"] if m["role"] == "tool"}
    http_result, refused, pipeline_result = results.values()
    assert refused["error"]["type"] == "ssrf_blocked"
    assert http_result["status"] == 200 and http_result["body"] == {"city": "Oslo", "temp_c": 21}
    assert pipeline_result == {"rows": [{"name": "item3", "price": 9}, {"name": "item6", "price": 8}], "count": 2}
    assert llm.requests[0]["headers"]["authorization"] == f"Bearer {API_KEY}"


async def test_finish_is_validated_against_the_output_schema_and_repaired(run_program: Run) -> None:
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    async with ScriptedLLM() as llm:
        llm.script(
            [
                {"tool_calls": [{"name": "finish", "arguments": {"result": {"score": "high"}}}]},
                {
                    "when": {"contains": "repair 1 of 2"},
                    "tool_calls": [{"name": "finish", "arguments": {"result": {"score": 9}}}],
                },
            ]
        )
        run = await run_program(make_job(output_schema=schema), llm)

    assert run.code == 0
    assert run.result.output == {"score": 9} and run.result.steps == 2
    repair = json.loads(llm.requests[1]["body"]["messages"][-1]["content"])
    assert repair["accepted"] is False and '"high" is not of type "integer"' in repair["errors"][0]


async def max_steps_scenario(run_program: Run) -> None:
    async with ScriptedLLM() as llm:
        llm.script([{"tool_calls": [{"name": "get_context", "arguments": {}}]}] * 3)
        run = await run_program(make_job(max_steps=3), llm)

    assert run.code == 1
    assert run.result.error is not None
    assert (run.result.error.type, run.result.error.message) == ("max_steps", "exceeded max_steps=3")
    assert run.result.steps == 3 and len(llm.requests) == 3


async def max_tokens_scenario(run_program: Run) -> None:
    usage = {"prompt_tokens": 500, "completion_tokens": 100}
    async with ScriptedLLM() as llm:
        llm.script([{"text": "thinking", "tool_calls": [{"name": "get_context", "arguments": {}}], "usage": usage}] * 2)
        run = await run_program(make_job(max_tokens=1000), llm)

    assert run.code == 1
    assert run.result.error is not None
    assert (run.result.error.type, run.result.error.message) == ("max_tokens", "token budget exceeded: 1200 > 1000")
    assert run.result.usage.model_dump() == {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}


async def timeout_scenario(run_program: Run) -> None:
    async with ScriptedLLM() as llm:
        llm.script([{"text": "slow", "delay_s": 30}])
        started = time.monotonic()
        run = await run_program(make_job(timeout_s=1.0), llm)
        elapsed_s = time.monotonic() - started

    assert run.code == 1
    assert run.result.error is not None
    assert (run.result.error.type, run.result.error.message) == ("timeout", "wall timeout of 1s exceeded")
    assert elapsed_s < 15


async def test_limits_end_the_agent_with_their_reason(run_program: Run) -> None:
    # Each scenario is its own program; running them side by side keeps the suite fast.
    await asyncio.gather(
        max_steps_scenario(run_program), max_tokens_scenario(run_program), timeout_scenario(run_program)
    )


async def retried_scenario(run_program: Run) -> None:
    async with ScriptedLLM() as llm:
        llm.script(
            [
                {"error": 429, "retry_after": 1},
                {"error": 500},
                {"tool_calls": [{"name": "finish", "arguments": {"result": "ok"}}]},
            ]
        )
        run = await run_program(make_job(), llm)

    assert run.code == 0 and run.result.output == "ok"
    first, second, _ = llm.requests
    assert second["at"] - first["at"] >= 0.95
    retries = [log for log in run.logs if log["msg"] == "provider call failed; retrying"]
    assert retries[0]["delay_s"] == 1.0
    assert "HTTP 429" in retries[0]["reason"] and "HTTP 500" in retries[1]["reason"]


async def retries_run_out_scenario(run_program: Run) -> None:
    async with ScriptedLLM() as llm:
        llm.script([{"error": 503}] * 3)
        run = await run_program(make_job(), llm, max_retries=2)

    assert run.code == 1
    assert run.result.error is not None and run.result.error.type == "provider_error"
    assert "after 3 attempts" in run.result.error.message and len(llm.requests) == 3


async def breaker_scenario(run_program: Run) -> None:
    async with ScriptedLLM() as llm:
        llm.script([{"error": 500}] * 8)
        run = await run_program(make_job(), llm, max_retries=10)

    assert run.code == 1
    assert run.result.error is not None and run.result.error.type == "circuit_open"
    assert run.result.error.message.startswith("circuit open after 5 consecutive provider failures")
    assert len(llm.requests) == 5


async def test_provider_faults_are_retried_until_retries_or_the_breaker_stop_them(run_program: Run) -> None:
    await asyncio.gather(
        retried_scenario(run_program), retries_run_out_scenario(run_program), breaker_scenario(run_program)
    )


def fake_api(received: list[dict[str, Any]]) -> Starlette:
    async def patch(request: Request) -> Response:
        body = await request.json()
        received.append({"path": request.url.path, "auth": request.headers.get("authorization"), "body": body})
        if len(received) == 1:
            error = {"code": "validation_failed", "message": "edges[2].to: unknown node 'sumary' (known: a, summary)"}
            return JSONResponse({"error": error}, 422)
        return JSONResponse({"run_id": "run-1", "from_version": 1, "ir_version": 2, "added_nodes": ["summary"]})

    return Starlette(routes=[Route("/api/v1/runs/{run_id}/patch", patch, methods=["POST"])])


async def test_patch_workflow_gets_the_refusal_back_and_its_correction_applies(run_program: Run) -> None:
    received: list[dict[str, Any]] = []
    bad = [{"op": "add", "path": "/edges/-", "value": {"from": "agent", "to": "sumary"}}]
    good = [{"op": "add", "path": "/edges/-", "value": {"from": "agent", "to": "summary"}}]
    async with local_server(fake_api(received)) as host, ScriptedLLM() as llm:
        llm.script(
            [
                {"tool_calls": [{"name": "patch_workflow", "arguments": {"ops": bad, "reason": "add a summary"}}]},
                {
                    "when": {"contains": "unknown node"},
                    "tool_calls": [{"name": "patch_workflow", "arguments": {"ops": good}}],
                },
                {
                    "when": {"contains": "ir_version"},
                    "tool_calls": [{"name": "finish", "arguments": {"result": "patched"}}],
                },
            ]
        )
        run = await run_program(make_job(tools=["patch_workflow"]), llm, api_url=f"http://{host}", api_token=API_TOKEN)

    assert run.code == 0 and run.result.output == "patched"
    assert [r["path"] for r in received] == ["/api/v1/runs/run-1/patch"] * 2
    assert all(r["auth"] == f"Bearer {API_TOKEN}" for r in received)
    assert received[0]["body"] == {"ops": bad, "reason": "add a summary"}
    assert received[1]["body"] == {"ops": good, "reason": None}
    refused = json.loads(llm.requests[1]["body"]["messages"][-1]["content"])
    assert refused["applied"] is False and refused["status"] == 422
    assert refused["error"]["error"]["message"].startswith("edges[2].to: unknown node")
    applied = json.loads(llm.requests[2]["body"]["messages"][-1]["content"])
    assert applied["applied"] is True and applied["ir_version"] == 2
