"""The agent worker against a fake agent program in a real subprocess: live logs, redaction, failures, caps, budget."""

from __future__ import annotations

import json
import sys
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from common.keys import Keys
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.agent import AgentHandler, NodeLog, TokenBudget
from workers.agent._budget import budget_day

FAKE_AGENT = Path(__file__).resolve().parents[3] / "support" / "fake_agent.py"
LLM_KEY = "llm-key-0123456789-very-secret"
CONFIGURED_SECRET = "configured-secret-value-42"
LEAKS = (
    LLM_KEY,
    CONFIGURED_SECRET,
    "aob_agent_",
    "sk-proj-abcdefghijklmnopqrstuvwx",
    "AKIAABCDEFGHIJKLMNOP",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYab",
    "hunter22",
)


def agent_deployment(deployment: Deployment, **overrides: Any) -> Deployment:
    return deployment.replace(
        **{
            "agent_process_command": (sys.executable, str(FAKE_AGENT)),
            "llm_api_key": SecretStr(LLM_KEY),
            "llm_base_url": "http://127.0.0.1:9/v1",
            "agent_secret_values": (SecretStr(CONFIGURED_SECRET),),
            "agent_timeout_grace_s": 0.5,
        }
        | overrides
    )


def workflow(script: dict[str, Any], **config: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """An agent node (running the fake with ``script``) followed by a transform using its output."""
    definition = {
        "name": "agent-test",
        "nodes": [
            {"id": "agent", "type": "agent", "config": {"prompt": f"say {CONFIGURED_SECRET}", **config}},
            {"id": "after", "type": "transform", "config": {"output": "{{ nodes.agent.output }}"}},
        ],
        "edges": [{"from": "agent", "to": "after"}],
    }
    return definition, {"script": script}


@pytest.fixture
async def engine(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Engine]:
    agent = agent_deployment(deployment)
    async with Engine(agent, redis, handlers=[AgentHandler(agent.worker(), pg_pool, redis)], pool=pg_pool) as running:
        yield running


async def submit(engine: Engine, script: dict[str, Any], **config: Any) -> str:
    definition, inputs = workflow(script, **config)
    # The fake reads its script from the prompt; the prompt template renders the run input into it.
    definition["nodes"][0]["config"]["prompt"] = "{{ inputs.script | tojson }}"
    return await engine.submit(definition, inputs)


async def stored_lines(redis: aioredis.Redis, keys: Keys, run_id: str, node: str = "agent") -> list[dict[str, str]]:
    return [fields | {"id": entry_id} for entry_id, fields in await redis.xrange(keys.logs(run_id, node))]


async def archived(pool: asyncpg.Pool, run_id: str, node: str = "agent") -> asyncpg.Record:
    row = await pool.fetchrow("SELECT * FROM node_logs WHERE run_id = $1 AND node_id = $2", run_id, node)
    assert row is not None, f"no node_logs row for {run_id}/{node}"
    return row


async def test_lines_are_readable_while_the_program_runs(
    engine: Engine, redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    run_id = await submit(engine, {"lines": 3, "gate": str(gate), "result": {"status": "succeeded", "output": 42}})

    async def first_lines() -> list[dict[str, str]]:
        lines = await stored_lines(redis, keys, run_id)
        assert any(entry["line"] == "model line 2" for entry in lines), lines
        return lines

    lines = await eventually(first_lines, 10)
    # The program is still blocked on the gate: nothing has finished yet.
    assert not gate.exists()
    assert (await engine.statuses(run_id))["agent"] == "running"
    assert [entry["kind"] for entry in lines[:2]] == ["log", "text"]
    assert lines[0]["id"] == "1-1" and lines[0]["attempt"] == "1"
    assert "log" in await engine.event_types(run_id, "agent")

    gate.touch()
    assert await engine.wait_ended(run_id) == "succeeded"
    assert await engine.output(run_id, "agent") == 42
    assert await engine.output(run_id, "after") == 42
    row = await archived(pg_pool, run_id)
    assert row["attempt"] == 1 and not row["truncated"]
    assert row["text"].split("\n")[1:4] == ["model line 0", "model line 1", "model line 2"]
    assert row["text"].split("\n")[-1].startswith("@@AOB_RESULT@@ ")
    assert await redis.ttl(keys.logs(run_id, "agent")) > 0
    # Only model calls the worker made are charged: the usage the program reports (15) counts for nothing.
    assert await TokenBudget(redis, keys, 100).used("tenant-test") == 0


async def test_secrets_never_reach_stored_logs_events_or_archive(
    engine: Engine, redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool
) -> None:
    script = {"echo_secrets": LLM_KEY, "result": {"status": "succeeded", "output": f"key {LLM_KEY}"}}
    # Only an agent that may patch has a token the worker holds (and must keep out of everything stored).
    run_id = await submit(engine, script, tools=["patch_workflow"])
    assert await engine.wait_ended(run_id) == "succeeded"

    stored = "\n".join(entry["line"] for entry in await stored_lines(redis, keys, run_id))
    events = json.dumps(await engine.events(run_id))
    text = (await archived(pg_pool, run_id))["text"]
    output = json.dumps(await engine.output(run_id, "agent"))
    assert "the provider key is [REDACTED] ok" in stored
    for where, content in (("stream", stored), ("events", events), ("node_logs", text), ("output", output)):
        for leak in LEAKS:
            assert leak not in content, f"{leak!r} leaked into the {where}"


@pytest.mark.parametrize(
    ("script", "config", "error_type", "kept"),
    [
        ({"lines": 2, "stderr": "Traceback: boom", "kill_self": True}, {}, "crash", "Traceback: boom"),
        ({"lines": 2, "hang": True}, {"timeout_s": 0.5}, "timeout", "model line 1"),
        ({"lines": 2, "result": None, "exit": 0}, {}, "no_result", "model line 1"),
        (
            {"lines": 2, "result": {"status": "failed", "error": {"type": "max_steps", "message": "10 steps used"}}},
            {},
            "max_steps",
            "model line 1",
        ),
    ],
    ids=["crash", "hang-past-timeout", "no-result", "program-failure"],
)
async def test_failures_fail_the_node_and_keep_the_log(
    engine: Engine,
    redis: aioredis.Redis,
    keys: Keys,
    pg_pool: asyncpg.Pool,
    script: dict[str, Any],
    config: dict[str, Any],
    error_type: str,
    kept: str,
) -> None:
    run_id = await submit(engine, script, **config)
    assert await engine.wait_ended(run_id) == "failed"
    state = (await engine.node_states(run_id))["agent"]
    assert state["status"] == "failed"
    assert state["error"]["type"] == error_type, state
    assert (await engine.statuses(run_id)).get("after") in (None, "skipped", "pending")
    assert any(kept in entry["line"] for entry in await stored_lines(redis, keys, run_id))
    assert kept in (await archived(pg_pool, run_id))["text"]


async def test_over_budget_tenant_fails_at_once(engine: Engine, redis: aioredis.Redis, keys: Keys) -> None:
    await redis.set(keys.token_budget("tenant-test", budget_day()), 1_000_000)
    run_id = await submit(engine, {"lines": 1})
    assert await engine.wait_ended(run_id) == "failed"
    error = (await engine.node_states(run_id))["agent"]["error"]
    assert error["type"] == "budget_exceeded"
    assert error["retryable"] is False
    assert "used 1000000 of 1000000" in error["message"]
    assert await redis.exists(keys.logs(run_id, "agent")) == 0


# tracemalloc slows every allocation about fourfold: storing the 10 MB cap alone takes ~50 s on a shared core.
@pytest.mark.timeout(400)
async def test_a_50mb_log_keeps_memory_flat_and_stores_the_cap(
    engine: Engine, redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    cap = engine.worker.settings.agent_log_cap_bytes
    peaks: dict[str, int] = {}
    archive = NodeLog.archive

    async def measured_archive(log: NodeLog, pool: asyncpg.Pool) -> None:
        # Separates following the output (must stay flat) from archiving the stored 10 MB (bounded by the cap).
        peaks["streaming"] = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.reset_peak()
        await archive(log, pool)
        peaks["archive"] = tracemalloc.get_traced_memory()[1] - baseline

    monkeypatch.setattr(NodeLog, "archive", measured_archive)
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        run_id = await submit(engine, {"lines": 1, "bulk_bytes": 50 * 1024 * 1024})
        assert await engine.wait_ended(run_id, timeout_s=300) == "succeeded"
    finally:
        tracemalloc.stop()
    assert peaks["streaming"] < 8 * 1024 * 1024, f"following 50 MB grew traced memory by {peaks['streaming']} bytes"
    assert peaks["archive"] < 5 * cap, f"archiving grew traced memory by {peaks['archive']} bytes"

    row = await archived(pg_pool, run_id)
    assert row["truncated"] is True
    assert row["bytes"] > 50 * 1024 * 1024
    assert cap - 1000 < len(row["text"].encode()) <= cap + 1000
    last = json.loads(row["text"].rsplit("\n", 1)[-1])
    assert last["event"] == "log_truncated"
    entries = await redis.xlen(keys.logs(run_id, "agent"))
    assert entries == len(row["text"].split("\n"))
    truncated_events = [e for e in await engine.events(run_id) if e["type"] == "log" and e["data"].get("truncated")]
    assert truncated_events and truncated_events[0]["data"]["dropped_lines"] > 400_000
    assert await engine.output(run_id, "agent") == {"ok": True}
