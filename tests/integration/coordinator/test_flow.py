"""The choreography engine end to end on the real Redis: joins, branches, dead paths, failures."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain


def t(node_id: str, output: Any, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "config": {"output": output}, **extra}


async def test_linear_chain_succeeds_in_order(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(chain(5))
        assert (await engine.run_hash(run_id))["status"] == "succeeded"
        assert set((await engine.statuses(run_id)).values()) == {"succeeded"}
        succeeded = [e["node_id"] for e in await engine.events(run_id) if e["type"] == "node_succeeded"]
        assert succeeded == ["n0", "n1", "n2", "n3", "n4"]
        types = await engine.event_types(run_id)
        assert types[0] == "run_started" and types[-1] == "run_succeeded"
        assert await engine.event_types(run_id, "n2") == ["node_queued", "node_started", "node_succeeded"]


async def test_transform_templates_and_outputs(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "greet",
        "nodes": [
            t("a", {"greeting": "hello {{ inputs.who }}", "n": "{{ inputs.n }}"}),
            t("b", {"shout": "{{ nodes.a.output.greeting | upper }}", "twice": "{{ nodes.a.output.n * 2 }}"}),
        ],
        "edges": [{"from": "a", "to": "b"}],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition, {"who": "ada", "n": 21})
        assert await engine.output(run_id, "a") == {"greeting": "hello ada", "n": 21}
        assert await engine.output(run_id, "b") == {"shout": "HELLO ADA", "twice": 42}
        run = await engine.run_hash(run_id)
        assert json.loads(run["outputs"]) == {"b": {"shout": "HELLO ADA", "twice": 42}}


async def test_diamond_joins_all(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "diamond",
        "nodes": [t("a", 1), t("b", 2), t("c", 3), t("d", "{{ nodes.b.output + nodes.c.output }}")],
        "edges": [
            {"from": "a", "to": "b"},
            {"from": "a", "to": "c"},
            {"from": "b", "to": "d"},
            {"from": "c", "to": "d"},
        ],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        assert await engine.output(run_id, "d") == 5
        assert (await engine.event_types(run_id, "d")).count("node_queued") == 1


async def test_branch_dead_path_and_join(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "branchy",
        "nodes": [
            t("score", {"value": "{{ inputs.score }}"}),
            {"id": "check", "type": "branch", "config": {}},
            t("high", "high"),
            t("low", "low"),
            t("after_low", "after"),
            {"id": "merge", "type": "noop", "config": {}},
        ],
        "edges": [
            {"from": "score", "to": "check"},
            {"from": "check", "to": "high", "when": "output.value >= 80"},
            {"from": "check", "to": "low", "condition": "$.value < 80"},
            {"from": "low", "to": "after_low"},
            {"from": "high", "to": "merge"},
            {"from": "after_low", "to": "merge"},
        ],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition, {"score": 91})
        statuses = await engine.statuses(run_id)
        assert statuses == {
            "score": "succeeded",
            "check": "succeeded",
            "high": "succeeded",
            "low": "skipped",
            "after_low": "skipped",
            "merge": "succeeded",
        }
        assert await engine.output(run_id, "check") == {"value": 91}
        skipped = [e for e in await engine.events(run_id) if e["type"] == "node_skipped"]
        assert {e["node_id"] for e in skipped} == {"low", "after_low"}
        assert all(e["data"]["reason"] == "dead path" for e in skipped)
        assert (await engine.run_hash(run_id))["status"] == "succeeded"


async def test_join_any_runs_once_on_first_live_edge(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "race",
        "nodes": [
            t("a", 1),
            t("fast", "f"),
            {"id": "slow", "type": "delay", "config": {"seconds": 0.3}},
            t("first", "done", join="any"),
        ],
        "edges": [
            {"from": "a", "to": "fast"},
            {"from": "a", "to": "slow"},
            {"from": "fast", "to": "first"},
            {"from": "slow", "to": "first"},
        ],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        assert await engine.event_types(run_id, "first") == ["node_queued", "node_started", "node_succeeded"]
        events = await engine.events(run_id)
        order = [e["node_id"] for e in events if e["type"] == "node_succeeded"]
        assert order.index("first") < order.index("slow")
        assert (await engine.run_hash(run_id))["status"] == "succeeded"


async def test_failure_edge_handles_failure(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "handled",
        "nodes": [t("bad", "{{ inputs.missing }}"), t("ok", "fine"), t("recover", "recovered")],
        "edges": [{"from": "bad", "to": "ok"}, {"from": "bad", "to": "recover", "when": "failed"}],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        statuses = await engine.statuses(run_id)
        assert statuses == {"bad": "failed", "ok": "skipped", "recover": "succeeded"}
        assert (await engine.run_hash(run_id))["status"] == "succeeded"


async def test_unhandled_failure_fails_run(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "broken",
        "nodes": [t("bad", "{{ inputs.missing }}"), t("next", 1)],
        "edges": [{"from": "bad", "to": "next"}],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        run = await engine.run_hash(run_id)
        assert run["status"] == "failed"
        error = json.loads(run["error"])
        assert error["node_id"] == "bad" and error["type"] == "template_error"
        assert "missing key 'missing'" in error["message"]
        assert (await engine.event_types(run_id))[-1] == "run_failed"
        assert "next" not in await engine.statuses(run_id)


async def test_unknown_type_is_skipped_and_run_flows_through(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "future",
        "nodes": [t("a", 1), {"id": "fn", "type": "function", "config": {"code": "x"}}, t("b", 2)],
        "edges": [{"from": "a", "to": "fn"}, {"from": "fn", "to": "b"}],
    }
    async with Engine(deployment, redis) as engine:
        run_id = await engine.run_to_end(definition)
        assert await engine.statuses(run_id) == {"a": "succeeded", "fn": "skipped", "b": "succeeded"}
        skipped = [e for e in await engine.events(run_id) if e["type"] == "node_skipped"]
        assert skipped[0]["data"] == {"reason": "unknown node type", "warning": True}


async def test_spawn_limit_fails_agent_beyond_limit(deployment: Deployment, redis: aioredis.Redis) -> None:
    definition = {
        "name": "agents",
        "nodes": [t("a", 1), {"id": "agent1", "type": "agent", "config": {"prompt": "hi"}}],
        "edges": [{"from": "a", "to": "agent1"}],
    }
    async with Engine(deployment.replace(max_agents=1), redis) as engine:
        # Compiled under a limit of 1, routed under a limit of 0: the router is the last line of defence.
        engine.coordinators[0].settings = deployment.replace(max_agents=0).coordinator()
        run_id = await engine.run_to_end(definition)
        states = await engine.node_states(run_id)
        assert states["agent1"]["status"] == "failed"
        assert states["agent1"]["error"]["type"] == "spawn_limit"
        assert (await engine.run_hash(run_id))["status"] == "failed"
