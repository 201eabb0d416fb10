"""Retries, timeouts, cancellation, idempotent completion, stale IRs, patches and resume on the real Redis."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from common.metrics import Metrics
from common.runs.cancel import cancel_run
from common.runs.dead_letters import DeadLetter
from common.runs.messages import CompletionSignal
from common.runs.patch import patch_run
from common.runs.resume import resume_run
from common.workflow.compiler import compile_definition
from coordinator import Coordinator
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.scripted import ScriptedHandler, scripted_type


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


def s(node_id: str, **config: Any) -> dict[str, Any]:
    extra = {k: config.pop(k) for k in ("retry", "timeout_s") if k in config}
    return {"id": node_id, "type": "scripted", "config": config, **extra}


def flow(*nodes: dict[str, Any]) -> dict[str, Any]:
    """A chain of ``nodes`` in the order given."""
    pairs = itertools.pairwise(n["id"] for n in nodes)
    return {"name": "t", "nodes": list(nodes), "edges": [{"from": a, "to": b} for a, b in pairs]}


RETRY_FAST = {"max_attempts": 3, "backoff_s": 0.05}


async def test_retry_then_success(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.run_to_end(flow(s("a", fail_attempts=2, output="ok", retry=RETRY_FAST)))
        state = (await engine.node_states(run_id))["a"]
        assert state["status"] == "succeeded" and state["attempt"] == 3
        types = await engine.event_types(run_id, "a")
        assert types.count("node_retrying") == 2 and types[-1] == "node_succeeded"
        assert (await engine.run_hash(run_id))["status"] == "succeeded"


async def test_exhausted_retries_fail_run_with_last_error(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.run_to_end(flow(s("a", fail_attempts=9, retry=RETRY_FAST), s("b")))
        run = await engine.run_hash(run_id)
        assert run["status"] == "failed"
        assert json.loads(run["error"])["message"] == "scripted failure on attempt 3"
        assert (await engine.node_states(run_id))["a"]["attempt"] == 3


async def test_non_retryable_failure_is_not_retried(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.run_to_end(flow(s("a", fail_attempts=9, retryable=False, retry=RETRY_FAST)))
        assert (await engine.node_states(run_id))["a"]["attempt"] == 1


async def test_node_timeout(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.run_to_end(flow(s("slow", sleep_s=30, timeout_s=0.3)))
        state = (await engine.node_states(run_id))["slow"]
        assert state["status"] == "failed"
        assert state["error"] == {"type": "timeout", "message": "timeout after 0.3s", "retryable": True}


async def test_run_timeout(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {"name": "t", "nodes": [{"id": "wait", "type": "delay", "config": {"seconds": 30}}], "edges": []}
    async with Engine(deployment, redis) as engine:
        run_id = await engine.submit(definition, timeout_s=0.3)
        assert await engine.wait_ended(run_id) == "timed_out"
        assert (await engine.event_types(run_id))[-1] == "run_timed_out"
        assert (await engine.statuses(run_id))["wait"] == "cancelled"


async def test_cancel_mid_run_tells_the_handler(deployment: Deployment, redis: aioredis.Redis) -> None:
    handler = ScriptedHandler()
    async with Engine(deployment, redis, handlers=[handler]) as engine:
        run_id = await engine.submit(flow(s("first"), s("long", sleep_s=30), s("never")))

        async def running() -> bool:
            return (await engine.statuses(run_id)).get("long") == "running"

        await eventually(running)
        assert await cancel_run(engine.scripts, run_id) == "ok"
        assert await cancel_run(engine.scripts, run_id) == "ended"
        assert await engine.wait_ended(run_id) == "cancelled"

        async def handler_told() -> bool:
            return handler.cancelled == ["long"]

        await eventually(handler_told)
        statuses = await engine.statuses(run_id)
        assert statuses == {"first": "succeeded", "long": "cancelled"}
        assert (await engine.event_types(run_id))[-1] == "run_cancelled"


async def test_same_signal_twice_changes_nothing(deployment: Deployment, redis: aioredis.Redis) -> None:
    engine = Engine(deployment, redis)  # not started: the test plays the worker
    run_id = await engine.submit(flow(s("a"), s("b")))
    signal = CompletionSignal(
        run_id=run_id, node_id="a", token_id="0:a:1", attempt=1, status="succeeded", output_ref='"x"'
    ).model_dump_json()
    coordinator = Coordinator(deployment.coordinator(), redis)
    await coordinator.process_batch([signal, signal])
    await coordinator.process_batch([signal])
    assert (await engine.event_types(run_id, "a")).count("node_succeeded") == 1
    assert (await engine.event_types(run_id, "b")) == ["node_queued"]
    assert (await engine.run_hash(run_id))["counter"] == "1"


async def test_a_signal_of_a_newer_version_is_dead_lettered_not_applied(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    engine = Engine(deployment, redis)
    run_id = await engine.submit(flow(s("a"), s("b")))
    signal = {"v": 2, "run_id": run_id, "node_id": "a", "token_id": "0:a:1", "attempt": 1, "status": "succeeded"}
    metrics = Metrics()
    await Coordinator(deployment.coordinator(), redis, metrics=metrics).process_batch([json.dumps(signal)])
    assert await engine.event_types(run_id, "a") == ["node_queued"]
    [(entry_id, fields)] = await redis.xrange(engine.keys.dlq)
    parked = DeadLetter.read(entry_id, fields)
    assert (parked.kind, parked.run_id, parked.token_id) == ("signal", run_id, "0:a:1")
    assert json.loads(parked.payload) == signal and "CompletionSignal v2" in parked.reason
    refused = metrics.registry.get_sample_value("aob_coordinator_signals_total", {"result": "unsupported_version"})
    assert refused == 1


async def test_stale_decision_is_recomputed(deployment: Deployment, redis: aioredis.Redis) -> None:
    engine = Engine(deployment, redis)
    base = flow(s("a"))
    run_id = await engine.submit(base)
    coordinator = Coordinator(deployment.coordinator(), redis)
    warm = CompletionSignal(run_id=run_id, node_id="zz", token_id="x", attempt=1, status="succeeded")
    await coordinator.process_batch([warm.model_dump_json()])  # caches IR version 1 (unknown node: dropped)
    patched = compile_definition(flow(s("a"), s("added")), version=2).ir
    outcome = await patch_run(engine.scripts, run_id, patched, expected_version=1, author="test")
    assert outcome.status == "ok" and outcome.added_nodes == ["added"]
    signal = CompletionSignal(run_id=run_id, node_id="a", token_id="0:a:1", attempt=1, status="succeeded")
    await coordinator.process_batch([signal.model_dump_json()])
    assert (await engine.statuses(run_id))["added"] == "queued"
    assert "workflow_patched" in await engine.event_types(run_id)


async def test_patch_adds_nodes_after_running_node(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        base = flow(s("agentish", sleep_s=0.5, output={"n": 2}))
        run_id = await engine.submit(base)

        async def running() -> bool:
            return (await engine.statuses(run_id)).get("agentish") == "running"

        await eventually(running)
        extended = flow(
            s("agentish", sleep_s=0.5, output={"n": 2}),
            {"id": "double", "type": "transform", "config": {"output": "{{ nodes.agentish.output.n * 2 }}"}},
            {"id": "done", "type": "noop", "config": {}},
        )
        new_ir = compile_definition(extended, version=2).ir
        outcome = await patch_run(engine.scripts, run_id, new_ir, expected_version=1, author="node:agentish")
        assert outcome.status == "ok" and outcome.ir_version == 2
        assert outcome.added_edges == [{"from": "agentish", "to": "double"}, {"from": "double", "to": "done"}]
        stale = await patch_run(engine.scripts, run_id, new_ir, expected_version=1, author="late")
        assert stale.status == "conflict"
        assert await engine.wait_ended(run_id) == "succeeded"
        assert await engine.output(run_id, "double") == 4
        assert (await engine.run_hash(run_id))["ir_version"] == "2"
        patched = [e for e in await engine.events(run_id) if e["type"] == "workflow_patched"]
        assert patched[0]["data"]["added_nodes"] == ["double", "done"]
        ended = await patch_run(engine.scripts, run_id, new_ir, expected_version=2, author="late")
        assert ended.status == "ended"


async def test_resume_reruns_only_failed_node_and_successors(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        # "flaky" fails its first attempt only; without retries the run fails, and attempt 2 (the resume) succeeds.
        definition = flow(s("up", output=1), s("flaky", fail_attempts=1, output=2), s("down", output=3))
        run_id = await engine.run_to_end(definition)
        assert (await engine.run_hash(run_id))["status"] == "failed"
        outcome = await resume_run(engine.scripts, run_id)
        assert outcome.status == "ok" and outcome.nodes == ["flaky", "down"]
        assert await engine.wait_ended(run_id) == "succeeded"
        assert (await engine.event_types(run_id, "up")).count("node_succeeded") == 1
        assert (await engine.event_types(run_id, "flaky")).count("node_succeeded") == 1
        assert "run_resumed" in await engine.event_types(run_id)
        assert (await engine.node_states(run_id))["flaky"]["attempt"] == 2
        again = await resume_run(engine.scripts, run_id, from_node="down")
        assert again.nodes == ["down"]
        assert await engine.wait_ended(run_id) == "succeeded"
        assert (await engine.event_types(run_id, "up")).count("node_succeeded") == 1
        assert (await engine.event_types(run_id, "down")).count("node_succeeded") == 2
