"""Exactly once at the edges of the engine: runtime patches, resume, stale tokens and the recorder's merge.

Each test is the regression test of one case of issue 13, found on 2b0eb6e.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any, ClassVar

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.metrics import Metrics
from common.runs.cancel import cancel_run
from common.runs.messages import CompletionSignal
from common.runs.patch import patch_run
from common.runs.resume import resume_run
from common.workflow.compiler import compile_definition
from coordinator import Coordinator
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.scripted import ScriptedHandler, scripted_type
from tests.support.shards import delayed_members
from workers import NodeContext, NodeResult

FINAL_NODE_STATUSES = frozenset({"succeeded", "failed", "skipped", "cancelled"})


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


def s(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "scripted", "config": config}


def dag(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {"name": "t", "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    return dag(list(nodes), list(itertools.pairwise(n["id"] for n in nodes)))


async def complete(engine: Engine, coordinator: Coordinator, run_id: str, node_id: str) -> None:
    """Play the worker: report the node's current token as succeeded."""
    epoch = (await engine.run_hash(run_id)).get("epoch", "0")
    attempt = (await engine.node_states(run_id))[node_id]["attempt"]
    signal = CompletionSignal(
        run_id=run_id,
        node_id=node_id,
        token_id=f"{epoch}:{node_id}:{attempt}",
        attempt=attempt,
        status="succeeded",
        output_ref="null",
    )
    await coordinator.process_batch([signal.model_dump_json()])


async def test_patch_adding_a_node_without_edges_does_not_hang_the_run(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        base = chain(s("a"), s("b", sleep_s=1.0), s("z"))
        run_id = await engine.submit(base)

        async def b_running() -> bool:
            # By now the coordinator has decided `a` and holds the run's IR (version 1) in its cache.
            return (await engine.statuses(run_id)).get("b") == "running"

        await eventually(b_running)
        patched = compile_definition(base | {"nodes": [*base["nodes"], s("c")]}).ir
        outcome = await patch_run(engine.scripts, run_id, patched, expected_version=1, author="test")
        assert outcome.status == "ok" and outcome.added_nodes == ["c"]
        assert await engine.wait_ended(run_id) == "succeeded"
        assert (await engine.statuses(run_id))["c"] == "succeeded"


async def test_patch_removing_an_edge_into_a_pending_join_still_runs_the_join(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    nodes = [s("slow", sleep_s=1.0), s("a"), s("b"), s("j")]
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.submit(dag(nodes, [("slow", "a"), ("a", "j"), ("b", "j")]))

        async def b_done_slow_running() -> bool:
            statuses = await engine.statuses(run_id)
            return statuses.get("b") == "succeeded" and statuses.get("slow") == "running"

        await eventually(b_done_slow_running)
        # `a -> j` joins two pending nodes, so the patch is allowed; `j` now waits only for `b`, which is done.
        patched = compile_definition(dag(nodes, [("slow", "a"), ("b", "j")])).ir
        outcome = await patch_run(engine.scripts, run_id, patched, expected_version=1, author="test")
        assert outcome.status == "ok"
        assert await engine.wait_ended(run_id) == "succeeded"
        assert (await engine.statuses(run_id))["j"] == "succeeded"


async def test_patch_cannot_queue_a_node_that_became_queued_after_the_check(
    deployment: Deployment, redis: aioredis.Redis
) -> None:
    engine = Engine(deployment, redis)  # not started: the test plays the worker
    nodes = [s("x"), s("p"), s("n")]
    run_id = await engine.submit(dag(nodes, [("p", "n")]))
    coordinator = Coordinator(deployment.coordinator(), redis)
    await complete(engine, coordinator, run_id, "x")
    # The API checked `n` while it was pending; `p` finishes before the patch is applied and `n` is queued.
    with_edge = compile_definition(dag(nodes, [("p", "n"), ("x", "n")])).ir
    await complete(engine, coordinator, run_id, "p")
    assert (await engine.statuses(run_id))["n"] == "queued"
    outcome = await patch_run(engine.scripts, run_id, with_edge, expected_version=1, author="test")
    assert outcome.status == "refused"
    assert (await engine.event_types(run_id, "n")).count("node_queued") == 1
    assert int((await engine.run_hash(run_id))["ir_version"]) == 1


async def test_resume_from_one_branch_of_a_diamond_runs_the_join(deployment: Deployment, redis: aioredis.Redis) -> None:
    engine = Engine(deployment, redis)
    nodes = [s("a"), s("b"), s("c"), s("d")]
    run_id = await engine.submit(dag(nodes, [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]))
    coordinator = Coordinator(deployment.coordinator(), redis)
    await complete(engine, coordinator, run_id, "a")
    assert await cancel_run(engine.scripts, run_id) == "ok"
    # `c` was cancelled too: it runs again with `b`, so the join has both its inputs.
    outcome = await resume_run(engine.scripts, run_id, from_node="b")
    assert outcome.status == "ok" and outcome.nodes == ["b", "c", "d"]
    await complete(engine, coordinator, run_id, "b")
    assert (await engine.statuses(run_id))["d"] == "pending"
    await complete(engine, coordinator, run_id, "c")
    assert (await engine.statuses(run_id))["d"] == "queued"
    await complete(engine, coordinator, run_id, "d")
    assert (await engine.run_hash(run_id))["status"] == "succeeded"
    assert set((await engine.statuses(run_id)).values()) == {"succeeded"}


class CountingHandler(ScriptedHandler):
    """Records the token ids it executed."""

    node_type: ClassVar[str] = "scripted"

    def __init__(self) -> None:
        super().__init__()
        self.executed: list[str] = []

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        self.executed.append(ctx.token.token_id)
        return await super().__call__(ctx)


async def test_a_token_of_an_older_epoch_is_never_executed(deployment: Deployment, redis: aioredis.Redis) -> None:
    handler = CountingHandler()
    engine = Engine(deployment, redis, handlers=[handler])
    run_id = await engine.submit(chain(s("a")))
    # `0:a:1` waits in the stream while the run is cancelled and resumed, which queues `1:a:2`.
    assert await cancel_run(engine.scripts, run_id) == "ok"
    assert (await resume_run(engine.scripts, run_id)).status == "ok"
    async with engine:
        assert await engine.wait_ended(run_id) == "succeeded"
    assert handler.executed == ["1:a:2"]


async def test_recorder_takes_a_resume_as_a_reset_point(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with Engine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.run_to_end(chain(s("flaky", fail_attempts=1)))
        assert (await engine.run_hash(run_id))["status"] == "failed"
        assert (await resume_run(engine.scripts, run_id)).status == "ok"
        assert await engine.wait_ended(run_id) == "succeeded"
    # The recorder starts only now, so `failed`, `resumed` and `succeeded` reach it in one batch.
    async with Engine(deployment, redis, pool=pg_pool):

        async def recorded() -> asyncpg.Record | None:
            row = await pg_pool.fetchrow("SELECT status, error, ended_at FROM runs WHERE id = $1", run_id)
            return row if row is not None and row["status"] == "succeeded" else None

        row = await eventually(recorded)
    assert row["error"] is None
    assert row["ended_at"] is not None


async def test_recorder_never_moves_a_step_back_from_a_final_state(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    engine = Engine(deployment, redis)
    run_id = await engine.submit(chain({"id": "gate", "type": "noop", "config": {}}))
    # Entries from before numbering (no seq) of a node the running engine does not touch itself: the run's own,
    # numbered entries of `gate` would rightly override unnumbered ones whenever they reach the recorder later.
    step = {"v": 1, "kind": "step", "run_id": run_id, "node_id": "legacy", "attempt": 1}

    async def step_status() -> str | None:
        status: str | None = await pg_pool.fetchval(
            "SELECT status FROM run_steps WHERE run_id = $1 AND node_id = 'legacy' AND attempt = 1", run_id
        )
        return status

    async def ledger_drained() -> bool:
        return await redis.xlen(engine.keys.shard_for(run_id).ledger) == 0

    async with Engine(deployment, redis, pool=pg_pool):
        await redis.xadd(engine.keys.shard_for(run_id).ledger, {"l": json.dumps(step | {"status": "succeeded"})})
        await eventually(ledger_drained)
        assert await step_status() == "succeeded"
        # A `waiting` entry arriving after the final one (entries may come out of order across recorders).
        await redis.xadd(engine.keys.shard_for(run_id).ledger, {"l": json.dumps(step | {"status": "waiting"})})
        await eventually(ledger_drained)
        assert await step_status() == "succeeded"


async def delayed_tokens(engine: Engine) -> list[str]:
    return [json.loads(member)["token_id"] for member in await delayed_members(engine.redis, engine.keys)]


async def test_cancel_purges_the_runs_due_tokens(deployment: Deployment, redis: aioredis.Redis) -> None:
    engine = Engine(deployment, redis)
    run_id = await engine.submit(chain({"id": "wait", "type": "delay", "config": {"seconds": 3600}}))
    assert await delayed_tokens(engine) == ["0:wait:1"]
    assert await cancel_run(engine.scripts, run_id) == "ok"
    assert await delayed_tokens(engine) == []


async def test_resume_replaces_the_runs_due_tokens(deployment: Deployment, redis: aioredis.Redis) -> None:
    engine = Engine(deployment, redis)
    wait = {"id": "wait", "type": "delay", "config": {"seconds": 3600}}
    run_id = await engine.submit(dag([wait, s("boom")], []))
    coordinator = Coordinator(deployment.coordinator(), redis)
    failed = CompletionSignal(
        run_id=run_id, node_id="boom", token_id="0:boom:1", attempt=1, status="failed", output_ref=None
    )
    await coordinator.process_batch([failed.model_dump_json()])
    assert (await engine.run_hash(run_id))["status"] == "failed"
    assert (await resume_run(engine.scripts, run_id)).status == "ok"
    assert await delayed_tokens(engine) == ["1:wait:2"]


async def test_a_run_with_a_node_that_never_ended_fails_loudly(deployment: Deployment, redis: aioredis.Redis) -> None:
    engine = Engine(deployment, redis)
    run_id = await engine.submit(chain(s("a"), s("b")))
    # Corrupt b's join count, as a bug would: a's edge can no longer complete it, so b stays pending.
    await redis.hincrby(engine.keys.join(run_id), "b:r", 5)
    metrics = Metrics()
    await complete(engine, Coordinator(deployment.coordinator(), redis, metrics=metrics), run_id, "a")
    run = await engine.run_hash(run_id)
    assert run["status"] == "failed"
    assert json.loads(run["error"])["type"] == "engine_invariant" and "b" in json.loads(run["error"])["message"]
    assert metrics.registry.get_sample_value("aob_coordinator_signals_total", {"result": "invariant"}) == 1
