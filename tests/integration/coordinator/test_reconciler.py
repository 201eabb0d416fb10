"""The coordinator's reconciler: runs whose hot state Redis lost are rebuilt from Postgres and finish."""

from __future__ import annotations

from collections import Counter
from contextlib import AsyncExitStack
from typing import Any, ClassVar

import asyncpg
import redis.asyncio as aioredis

from common.auth import Principal
from common.keys import Keys
from common.runs.approval_store import list_approvals
from common.runs.approvals import decide_approval
from common.workflow.compiler import compile_definition
from coordinator import Reconciler
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.redis_loss import forget_run, latest_steps, postgres_matches_redis, step_status, wipe
from workers import NodeContext, NodeResult
from workers.builtin import BuiltinHandler
from workers.control import control_handler
from workers.hitl import HitlHandler

TENANT = "tenant-test"
ENDED_NODE = ("succeeded", "failed", "skipped", "cancelled")


def node(node_id: str, node_type: str = "transform", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "config": config}


def delayed_chain(first_s: float, second_s: float) -> dict[str, Any]:
    """a -> d1 -> b -> d2 -> c; c reads b's output, which is not its predecessor's."""
    nodes = [
        node("a", output="{{ inputs.i }}"),
        node("d1", "delay", seconds=first_s),
        node("b", output="{{ nodes.a.output * 10 }}"),
        node("d2", "delay", seconds=second_s),
        node("c", output="{{ nodes.b.output }}"),
    ]
    edges = [{"from": x, "to": y} for x, y in (("a", "d1"), ("d1", "b"), ("b", "d2"), ("d2", "c"))]
    return {"name": "chain", "nodes": nodes, "edges": edges}


async def recorded_status(pool: asyncpg.Pool, run_id: str) -> str | None:
    return await pool.fetchval("SELECT status FROM runs WHERE id = $1", run_id)  # type: ignore[no-any-return]


async def test_a_run_whose_hot_state_was_lost_finishes(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    deployment = deployment.replace(reconcile_interval_s=0.3)
    async with Engine(deployment, redis, pool=pg_pool, reconcile=True) as engine:
        run_id = await engine.submit(delayed_chain(1.0, 0.2), {"i": 4}, recorded=True)
        await eventually(lambda: step_is(pg_pool, run_id, "d1", "queued"))
        assert await forget_run(redis, keys, run_id) > 0
        # Nothing read Postgres back: the run stayed `running` there forever, its delayed token dropped unrun.
        assert await eventually(lambda: ended(pg_pool, run_id), timeout_s=15) == "succeeded"
        assert await engine.output(run_id, "c") == 40
        await postgres_matches_redis(pg_pool, redis, keys, [run_id])


async def step_is(pool: asyncpg.Pool, run_id: str, node_id: str, status: str) -> bool:
    return await step_status(pool, run_id, node_id) == status


async def ended(pool: asyncpg.Pool, run_id: str) -> str | None:
    status = await recorded_status(pool, run_id)
    return status if status in ("succeeded", "failed", "cancelled", "timed_out") else None


class CountingBuiltin(BuiltinHandler):
    """The built-in steps, counting each execution by (run, node, attempt)."""

    node_type: ClassVar[str] = "builtin"

    def __init__(self) -> None:
        self.executions: Counter[tuple[str, str, int]] = Counter()

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        self.executions[(ctx.run_id, ctx.node_id, ctx.token.attempt)] += 1
        return await super().__call__(ctx)


def gated() -> dict[str, Any]:
    nodes = [node("a", output=1), node("gate", "hitl", title="Ship?", timeout_s=600), node("ship", output="shipped"),
             node("stop", output="stopped")]  # fmt: skip
    edges = [
        {"from": "a", "to": "gate"},
        {"from": "gate", "to": "ship", "branch": "approved"},
        {"from": "gate", "to": "stop", "branch": "rejected"},
    ]
    return {"name": "gated", "nodes": nodes, "edges": edges}


def mapped() -> dict[str, Any]:
    """Doubles 1, 2, 3 in child runs one at a time, each child pausing first."""
    body = {
        "name": "double",
        "nodes": [node("pause", "delay", seconds=0.8), node("t", output="{{ inputs.x + inputs.x }}")],
        "edges": [{"from": "pause", "to": "t"}],
        "outputs": {"y": "{{ nodes.t.output }}"},
    }
    each = node("each", "map", items="{{ nodes.a.output }}", body=body, concurrency=1, inputs={"x": "{{ item }}"})
    return {"name": "mapped", "nodes": [node("a", output=[1, 2, 3]), each], "edges": [{"from": "a", "to": "each"}]}


async def children(pool: asyncpg.Pool, run_id: str) -> list[asyncpg.Record]:
    return list(await pool.fetch("SELECT id, status, outputs FROM runs WHERE parent_run_id = $1", run_id))


async def test_every_run_in_flight_finishes_after_redis_is_lost(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    deployment = deployment.replace(control_sweep_interval_s=0.2, control_block_ms=100, reconcile_interval_s=0.5)
    builtin = CountingBuiltin()

    async def engine(stack: AsyncExitStack, *, reconcile: bool) -> Engine:
        control = await stack.enter_async_context(control_handler(deployment.worker(), pg_pool, redis))
        handlers = [control, HitlHandler(pg_pool, redis, keys), builtin]
        return await stack.enter_async_context(
            Engine(deployment, redis, handlers=handlers, pool=pg_pool, reconcile=reconcile)
        )

    async with AsyncExitStack() as stack:
        first = await engine(stack, reconcile=False)
        chains = [await first.submit(delayed_chain(0.5 + 0.1 * i, 3.0), {"i": i}, recorded=True) for i in range(18)]
        gate_run = await first.submit(gated(), recorded=True)
        map_run = await first.submit(mapped(), recorded=True)

        async def in_flight() -> bool:
            # Child 0 ended (its outputs recorded), child 1 runs, the approval waits.
            kids = await children(pg_pool, map_run)
            done = [k for k in kids if k["status"] == "succeeded" and k["outputs"] is not None]
            waiting = await step_status(pg_pool, gate_run, "gate") == "waiting"
            return len(done) == 1 and [k["status"] for k in kids].count("running") == 1 and waiting

        await eventually(in_flight, timeout_s=20)
    runs = [chains, [gate_run], [map_run]]
    top = [run_id for group in runs for run_id in group]
    # What Postgres holds when Redis goes: only nodes not ended there may run again.
    every_run = [row["id"] for row in await pg_pool.fetch("SELECT id FROM runs")]
    assert {await recorded_status(pg_pool, run_id) for run_id in top} <= {"running", "waiting"}
    held = {run_id: await latest_steps(pg_pool, run_id) for run_id in every_run}
    assert await wipe(redis, keys) > 0
    # Decided while Redis has no run: the decision stands and reaches the rebuilt run.
    [approval], _ = await list_approvals(pg_pool, TENANT, status="pending", run_id=gate_run)
    await decide_approval(
        pg_pool, redis, keys, approval.id, Principal("k", TENANT, "editor", "alice", owner="alice"), "approve"
    )

    async with AsyncExitStack() as stack:
        second = await engine(stack, reconcile=True)

        async def all_ended() -> bool:
            return all([await ended(pg_pool, run_id) for run_id in top])

        await eventually(all_ended, timeout_s=40)
        assert {run_id: await ended(pg_pool, run_id) for run_id in top} == dict.fromkeys(top, "succeeded")
        assert [await second.output(run_id, "c") for run_id in chains] == [10 * i for i in range(18)]
        assert (await second.statuses(gate_run))["ship"] == "succeeded"
        assert (await second.statuses(gate_run))["stop"] == "skipped"
        assert await second.output(map_run, "each") == {"results": [{"y": 2}, {"y": 4}, {"y": 6}], "errors": []}
        kids = await children(pg_pool, map_run)
        assert len(kids) == 3 and {k["status"] for k in kids} == {"succeeded"}
        # Every run is hot again but the child that had ended before the loss: its parent counted it from Postgres.
        every_run = [row["id"] for row in await pg_pool.fetch("SELECT id FROM runs")]
        cold = [run_id for run_id in every_run if not await redis.exists(keys.run(run_id))]
        assert [(held[run_id]["t"]["status"], run_id.endswith("-0")) for run_id in cold] == [("succeeded", True)]
        await postgres_matches_redis(pg_pool, redis, keys, [run_id for run_id in every_run if run_id not in cold])
        for run_id in top:
            assert (await second.event_types(run_id)).count("run_rebuilt") == 1

    # Each node ran once, but a node not ended in Postgres at the loss may have run twice (at-least-once).
    for (run_id, node_id, _), count in builtin.executions.items():
        step = held.get(run_id, {}).get(node_id)
        ended_then = step is not None and step["status"] in ENDED_NODE
        assert count == 1 or (count == 2 and not ended_then), (run_id, node_id, count, step)
    ran_once = {(r, n) for (r, n, _), count in builtin.executions.items() if count == 1}
    assert ran_once, "no node ran once"
    # And each node ended once per epoch in the durable record.
    rows = await pg_pool.fetch(
        "SELECT run_id, node_id, epoch, count(*) FILTER (WHERE status IN ('succeeded', 'failed', 'skipped',"
        " 'cancelled')) AS ended, count(*) AS steps FROM run_steps GROUP BY run_id, node_id, epoch"
    )
    assert rows and all((row["ended"], row["steps"]) == (1, 1) for row in rows), [dict(r) for r in rows if r[3] != 1]


async def test_a_lost_child_whose_parent_ended_is_rebuilt_cancelled(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    body = {"name": "body", "nodes": [node("wait", "delay", seconds=60)]}
    ir = compile_definition(body).ir.model_dump(mode="json")
    # The parent's end was recorded, its child's cancellation was not, when Redis was lost.
    await pg_pool.execute("INSERT INTO runs (id, tenant_id, status) VALUES ('parent', $1, 'cancelled')", TENANT)
    await pg_pool.execute(
        "INSERT INTO runs (id, tenant_id, workflow_id, workflow_name, version, status, parent_run_id, parent_node_id,"
        " ir, started_at) VALUES ('child', $1, 'w', 'parent/each', 1, 'running', 'parent', 'each', $2, now())",
        TENANT,
        ir,
    )
    async with Engine(deployment, redis, pool=pg_pool):
        report = await Reconciler(deployment.coordinator(), redis, pg_pool).reconcile()

        assert [(o.run_id, o.result) for o in report.rebuilt] == [("child", "rebuilt")]
        assert report.cancelled == ["child"]
        assert await redis.hget(keys.run("child"), "status") == "cancelled"
        assert await eventually(lambda: ended(pg_pool, "child")) == "cancelled"
