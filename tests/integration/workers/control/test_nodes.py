"""Loop, map and sub-workflow nodes as child runs, on the in-process engine with real Redis and Postgres."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.keys import CONTROL_GROUP, Keys
from common.runs.cancel import cancel_run
from common.runs.cas import Cas
from common.workflow.child_run_limits import ChildRunLimits
from common.workflow.references import check_workflow_references
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.control import ChildrenConsumer, ControlHandler, control_handler
from workers.control._advance import Advancer
from workers.control._bodies import BodyResolver
from workers.control._state import ControlStore
from workers.http import http_handler

TENANT = "tenant-test"


class _PollServer(ThreadingHTTPServer):
    daemon_threads = True
    calls: int
    ready_on: int


class _Poll(BaseHTTPRequestHandler):
    server: _PollServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self.server.calls += 1
        status = "ready" if self.server.calls >= self.server.ready_on else "pending"
        body = json.dumps({"status": status, "call": self.server.calls}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def poll_server() -> Iterator[_PollServer]:
    server = _PollServer(("127.0.0.1", 0), _Poll)
    server.calls = 0
    server.ready_on = 3
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def control_deployment(deployment: Deployment) -> Deployment:
    return deployment.replace(control_sweep_interval_s=0.2, control_block_ms=100)


@pytest.fixture
async def engine(
    control_deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    poll_server: _PollServer,
) -> AsyncIterator[Engine]:
    deployment = control_deployment.replace(http_allowlist=frozenset({f"127.0.0.1:{poll_server.server_address[1]}"}))
    settings = deployment.worker()
    async with AsyncExitStack() as stack:
        control = await stack.enter_async_context(control_handler(settings, pg_pool, redis))
        http = await stack.enter_async_context(http_handler(settings))
        yield await stack.enter_async_context(Engine(deployment, redis, handlers=[control, http], pool=pg_pool))


async def store_workflow(pool: asyncpg.Pool, name: str, definition: dict[str, Any]) -> str:
    """Save ``definition`` as version 1 of a new workflow of the test tenant; returns its id."""
    workflow_id: str = await pool.fetchval(
        "INSERT INTO workflows (tenant_id, name, latest_version) VALUES ($1, $2, 1) RETURNING id", TENANT, name
    )
    await pool.execute(
        "INSERT INTO workflow_versions (workflow_id, version, definition, content_hash) VALUES ($1, 1, $2, 'h')",
        workflow_id,
        definition,
    )
    return workflow_id


def poll_body() -> dict[str, Any]:
    return {
        "name": "poll",
        "nodes": [{"id": "fetch", "type": "http", "config": {"url": "{{ inputs.url }}"}}],
        "outputs": {"status": "{{ nodes.fetch.output.body.status }}", "iteration": "{{ inputs.iteration }}"},
    }


def loop_workflow(url: str, **config: Any) -> dict[str, Any]:
    loop = {
        "body": poll_body(),
        "inputs": {"url": url, "iteration": "{{ loop.index }}"},
        "until": "output.status == 'ready'",
        **config,
    }
    return {"name": "poller", "nodes": [{"id": "wait", "type": "loop", "config": loop}]}


def double_body() -> dict[str, Any]:
    return {
        "name": "double",
        "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.x + inputs.x }}"}}],
        "outputs": {"y": "{{ nodes.t.output }}"},
    }


async def test_loop_polls_until_ready(engine: Engine, poll_server: _PollServer) -> None:
    url = f"http://127.0.0.1:{poll_server.server_address[1]}/status"
    run_id = await engine.submit(loop_workflow(url, max_iterations=5))
    assert await engine.wait_ended(run_id) == "succeeded"
    assert await engine.output(run_id, "wait") == {"output": {"status": "ready", "iteration": 2}, "iterations": 3}
    assert poll_server.calls == 3
    types = await engine.event_types(run_id, "wait")
    assert types.count("child_run_started") == 3 and types.count("child_run_ended") == 3


@pytest.mark.parametrize("on_max", ["fail", "succeed"])
async def test_loop_that_never_gets_there_ends_per_on_max(
    engine: Engine, poll_server: _PollServer, on_max: str
) -> None:
    poll_server.ready_on = 1_000
    url = f"http://127.0.0.1:{poll_server.server_address[1]}/status"
    run_id = await engine.submit(loop_workflow(url, max_iterations=4, on_max=on_max))
    status = await engine.wait_ended(run_id)
    assert poll_server.calls == 4
    if on_max == "fail":
        assert status == "failed"
        error = (await engine.node_states(run_id))["wait"]["error"]
        assert error["type"] == "max_iterations" and "max_iterations (4)" in error["message"]
    else:
        assert status == "succeeded"
        assert await engine.output(run_id, "wait") == {"output": {"status": "pending", "iteration": 3}, "iterations": 4}


def most_running(events: list[dict[str, Any]]) -> int:
    running = peak = 0
    for event in events:
        if event["type"] == "child_run_started":
            running += 1
        elif event["type"] == "child_run_ended":
            running -= 1
        peak = max(peak, running)
    return peak


async def test_map_of_100_keeps_10_running_and_returns_outputs_in_order(engine: Engine) -> None:
    body = double_body()
    # A short delay in each child keeps ten of them running at once.
    body["nodes"].insert(0, {"id": "pause", "type": "delay", "config": {"seconds": 0.05}})
    body["edges"] = [{"from": "pause", "to": "t"}]
    definition = {
        "name": "fan",
        "nodes": [
            {"id": "each", "type": "map", "config": {"items": "{{ inputs.xs }}", "body": body, "concurrency": 10,
                                                     "inputs": {"x": "{{ item }}", "i": "{{ index }}"}}},
        ],
    }  # fmt: skip
    run_id = await engine.submit(definition, {"xs": list(range(100))})
    assert await engine.wait_ended(run_id, timeout_s=40) == "succeeded"
    output = await engine.output(run_id, "each")
    assert output == {"results": [{"y": 2 * i} for i in range(100)], "errors": []}
    events = await engine.events(run_id)
    assert most_running(events) == 10
    started = [e["data"]["index"] for e in events if e["type"] == "child_run_started"]
    assert sorted(started) == list(range(100))


async def test_map_continue_lists_failed_items(engine: Engine) -> None:
    items: list[Any] = list(range(100))
    for bad in (7, 50, 93):
        items[bad] = {"not": "a number"}
    definition = {
        "name": "fan",
        "nodes": [{"id": "each", "type": "map", "config": {"items": "{{ inputs.xs }}", "body": double_body(),
                                                           "inputs": {"x": "{{ item }}"},
                                                           "on_item_failure": "continue"}}],
    }  # fmt: skip
    run_id = await engine.submit(definition, {"xs": items})
    assert await engine.wait_ended(run_id, timeout_s=40) == "succeeded"
    output = await engine.output(run_id, "each")
    results = output["results"]
    assert len(results) == 100
    assert [i for i, r in enumerate(results) if r is None] == [7, 50, 93]
    assert sum(1 for r in results if r is not None) == 97
    assert [e["index"] for e in output["errors"]] == [7, 50, 93]
    assert all(e["error"]["type"] == "child_failed" and "failed" in e["error"]["message"] for e in output["errors"])


async def test_map_fail_fails_the_node(engine: Engine) -> None:
    definition = {
        "name": "fan",
        "nodes": [{"id": "each", "type": "map", "config": {"items": [1, {"a": 1}, 3], "body": double_body(),
                                                           "inputs": {"x": "{{ item }}"}, "concurrency": 1}}],
    }  # fmt: skip
    run_id = await engine.submit(definition)
    assert await engine.wait_ended(run_id) == "failed"
    error = (await engine.node_states(run_id))["each"]["error"]
    assert error["type"] == "child_failed" and error["message"].startswith("item 1 (run ")


async def test_outputs_flow_up_from_grandchild(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    await store_workflow(pg_pool, "grandchild", {
        "name": "grandchild",
        "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.v * 10 }}"}}],
        "outputs": {"v": "{{ nodes.t.output }}"},
    })  # fmt: skip
    await store_workflow(pg_pool, "child", {
        "name": "child",
        "nodes": [{"id": "g", "type": "workflow", "config": {"workflow": "grandchild",
                                                             "inputs": {"v": "{{ inputs.v + 1 }}"}}}],
        "outputs": {"from_grandchild": "{{ nodes.g.output.v }}"},
    })  # fmt: skip
    parent = {
        "name": "parent",
        "nodes": [{"id": "c", "type": "workflow", "config": {"workflow": "child", "inputs": {"v": "{{ inputs.v }}"}}}],
    }
    run_id = await engine.submit(parent, {"v": 4}, started_by="key-1")
    assert await engine.wait_ended(run_id) == "succeeded"
    assert await engine.output(run_id, "c") == {"from_grandchild": 50}
    (child,) = await engine.redis.smembers(engine.keys.child_runs(run_id))
    child_run = await engine.run_hash(child)
    assert child_run["parent_run_id"] == run_id and child_run["parent_node_id"] == "c"
    assert child_run["started_by"] == "key-1" and child_run["workflow_name"] == "child"
    (grandchild,) = await engine.redis.smembers(engine.keys.child_runs(child))
    assert (await engine.run_hash(grandchild))["parent_run_id"] == child

    async def recorded() -> bool:
        rows = await pg_pool.fetch("SELECT id, parent_run_id FROM runs WHERE id = ANY($1::text[])", [child, grandchild])
        return {r["id"]: r["parent_run_id"] for r in rows} == {child: run_id, grandchild: child}

    await eventually(recorded)


async def test_failed_child_fails_the_node_with_its_error(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    await store_workflow(pg_pool, "broken", {
        "name": "broken", "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.nope.x }}"}}],
    })  # fmt: skip
    parent = {"name": "parent", "nodes": [{"id": "c", "type": "workflow", "config": {"workflow": "broken"}}]}
    run_id = await engine.submit(parent)
    assert await engine.wait_ended(run_id) == "failed"
    error = (await engine.node_states(run_id))["c"]["error"]
    assert error["type"] == "child_failed" and "failed: config:" in error["message"]


async def test_unknown_workflow_fails_the_node(engine: Engine) -> None:
    parent = {"name": "parent", "nodes": [{"id": "c", "type": "workflow", "config": {"workflow": "ghost"}}]}
    run_id = await engine.submit(parent)
    assert await engine.wait_ended(run_id) == "failed"
    error = (await engine.node_states(run_id))["c"]["error"]
    assert error["message"] == "config.workflow: workflow 'ghost' not found in this tenant"


async def test_nesting_deeper_than_the_cap_fails(
    control_deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    deployment = control_deployment.replace(max_nesting_depth=1)
    settings = deployment.worker()
    inner = {"name": "inner", "nodes": [{"id": "n", "type": "noop", "config": {}}]}
    middle = {
        "name": "middle",
        "nodes": [{"id": "m", "type": "loop", "config": {"body": inner, "until": "true", "max_iterations": 1}}],
    }
    outer = {
        "name": "outer",
        "nodes": [{"id": "o", "type": "loop", "config": {"body": middle, "until": "true", "max_iterations": 1}}],
    }
    async with control_handler(settings, pg_pool, redis) as control, Engine(deployment, redis, handlers=[control]) as e:
        run_id = await e.submit(outer)
        assert await e.wait_ended(run_id) == "failed"
        error = (await e.node_states(run_id))["o"]["error"]
        assert "depth 2, above the limit of 1" in error["message"]


async def test_self_including_workflow_is_refused_with_the_cycle(pg_pool: asyncpg.Pool) -> None:
    def calls(target: str) -> dict[str, Any]:
        return {"name": "x", "nodes": [{"id": "w", "type": "workflow", "config": {"workflow": target}}]}

    assert await check_workflow_references(pg_pool, TENANT, "a", calls("a")) == ["cycle: a -> a"]
    await store_workflow(pg_pool, "a", calls("b"))
    await store_workflow(pg_pool, "c", {"name": "c", "nodes": [{"id": "n", "type": "noop"}]})
    looped = {"name": "b", "nodes": [{"id": "l", "type": "map", "config": {"items": [1], "body": calls("a")}}]}
    assert await check_workflow_references(pg_pool, TENANT, "b", looped) == ["cycle: b -> a -> b"]
    assert await check_workflow_references(pg_pool, TENANT, "b", calls("c")) == []
    assert await check_workflow_references(pg_pool, "other-tenant", "b", calls("a")) == []


async def test_cancelling_the_parent_cancels_every_descendant(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    await store_workflow(pg_pool, "sleeper", {
        "name": "sleeper", "nodes": [{"id": "zz", "type": "delay", "config": {"seconds": 60}}],
    })  # fmt: skip
    await store_workflow(pg_pool, "middle", {
        "name": "middle", "nodes": [{"id": "s", "type": "map", "config": {"items": [1, 2], "body": "sleeper"}}],
    })  # fmt: skip
    parent = {"name": "parent", "nodes": [{"id": "m", "type": "workflow", "config": {"workflow": "middle"}}]}
    run_id = await engine.submit(parent)

    async def grandchildren() -> list[str]:
        children = await engine.redis.smembers(engine.keys.child_runs(run_id))
        found = [g for c in children for g in await engine.redis.smembers(engine.keys.child_runs(c))]
        running = [g for g in found if (await engine.run_hash(g)).get("status") == "running"]
        return found if len(running) == 2 else []

    found = await eventually(grandchildren)
    (child,) = await engine.redis.smembers(engine.keys.child_runs(run_id))
    assert await cancel_run(engine.scripts, run_id) == "ok"
    for descendant in [run_id, child, *found]:
        assert await engine.wait_ended(descendant) == "cancelled"

    async def child_ended() -> list[str]:  # recorded by the control worker once the child ended
        return [e["data"]["status"] for e in await engine.events(run_id) if e["type"] == "child_run_ended"]

    assert await eventually(child_ended) == ["cancelled"]


async def test_timed_out_parent_ends_its_children(engine: Engine) -> None:
    sleeper = {"name": "sleeper", "nodes": [{"id": "zz", "type": "delay", "config": {"seconds": 60}}]}
    parent = {"name": "parent", "nodes": [{"id": "l", "type": "loop", "config": {"body": sleeper, "until": "true"}}]}
    run_id = await engine.submit(parent, timeout_s=0.5)
    assert await engine.wait_ended(run_id) == "timed_out"

    async def child() -> str:
        return next(iter(await engine.redis.smembers(engine.keys.child_runs(run_id))), "")

    assert await engine.wait_ended(await eventually(child)) == "cancelled"


async def test_repeated_child_end_is_counted_once(engine: Engine) -> None:
    definition = {"name": "fan", "nodes": [{"id": "each", "type": "map",
                                            "config": {"items": [1, 2], "body": double_body(),
                                                       "inputs": {"x": "{{ item }}"}}}]}  # fmt: skip
    run_id = await engine.submit(definition)
    assert await engine.wait_ended(run_id) == "succeeded"
    child = sorted(await engine.redis.smembers(engine.keys.child_runs(run_id)))[0]
    record = {"run_id": child, "parent_run_id": run_id, "parent_node_id": "each", "status": "failed"}
    children = engine.keys.shard_for(child).children
    await engine.redis.xadd(children, {"c": json.dumps(record)})

    async def consumed() -> bool:
        return await engine.redis.xlen(children) == 0

    await eventually(consumed)
    ended = [e for e in await engine.events(run_id) if e["type"] == "child_run_ended"]
    assert len(ended) == 2 and {e["data"]["status"] for e in ended} == {"succeeded"}


async def test_ends_left_by_a_dead_consumer_are_reclaimed(
    control_deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    control_settings = control_deployment.worker()
    keys = Keys(control_settings.key_prefix)
    store = ControlStore(redis, keys)
    advancer = Advancer(redis, keys, store, Cas(redis, keys, pg_pool), control_settings)
    handler = ControlHandler(
        redis, keys, store, advancer, BodyResolver(pg_pool, 5, ChildRunLimits.of(control_settings)), control_settings
    )
    live = ChildrenConsumer(redis, keys, store, advancer, control_settings, "live")
    await live.ensure_group()
    definition = {"name": "fan", "nodes": [{"id": "each", "type": "map",
                                            "config": {"items": [1, 2, 3], "body": double_body(), "concurrency": 1,
                                                       "inputs": {"x": "{{ item }}"}}}]}  # fmt: skip
    async with Engine(control_deployment, redis, handlers=[handler], pool=pg_pool) as engine:
        run_id = await engine.submit(definition)
        for index in range(3):

            async def first_child_ended() -> list[Any]:  # one stream per read: one slot on a cluster
                for shard in keys.all_shards():
                    got = await redis.xreadgroup(CONTROL_GROUP, "dead", {shard.children: ">"}, count=10)
                    if got:
                        return list(got)
                return []

            # A consumer that dies holding the record: it stays pending until the live one reclaims it.
            [[children, _]] = await eventually(first_child_ended)
            assert await live.reclaim() == 0
            pending = await redis.xpending(children, CONTROL_GROUP)
            assert pending["pending"] == 1
            await redis.xclaim(children, CONTROL_GROUP, "dead", 0, [pending["min"]], idle=60_000, justid=True)
            assert await live.reclaim() == 1, index
        assert await engine.wait_ended(run_id) == "succeeded"
        assert await engine.output(run_id, "each") == {"results": [{"y": 2}, {"y": 4}, {"y": 6}], "errors": []}
