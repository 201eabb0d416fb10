"""Rebuilding a live run's hot state from Postgres after Redis lost it: the rebuilt run is the run it was."""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.auth import Principal
from common.errors import NodeFailed
from common.keys import Keys
from common.runs.approval_store import list_approvals
from common.runs.approvals import decide_approval
from common.runs.cas import Cas
from common.runs.rebuild import RebuildOutcome, rebuild_run
from common.runs.resume import resume_run
from coordinator import Recorder
from tests.support.deployment import Deployment
from tests.support.engine import Engine, chain
from tests.support.eventually import eventually
from tests.support.redis_loss import forget_run, postgres_matches_redis, step_status
from workers import NodeContext, NodeResult
from workers.builtin import BuiltinHandler
from workers.hitl import HitlHandler

ALICE = Principal("key-alice", "tenant-test", "editor", "alice", owner="alice")


def node(node_id: str, node_type: str = "transform", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": node_type, "config": config}


async def rebuild(engine: Engine, run_id: str) -> RebuildOutcome:
    assert engine.pool is not None
    cas = Cas(engine.redis, engine.keys, engine.pool)
    return await rebuild_run(engine.scripts, engine.pool, cas, run_id, max_agents=engine.max_agents)


async def settled(engine: Engine, run_id: str, node_id: str, status: str) -> None:
    """Wait until Postgres records ``status`` for the node and the ledger is recorded up to here."""
    assert engine.pool is not None
    pool = engine.pool

    async def check() -> bool:
        return (
            await step_status(pool, run_id, node_id) == status
            and await engine.redis.xlen(engine.keys.shard_for(run_id).ledger) == 0
        )

    await eventually(check)


async def hot_state(redis: aioredis.Redis, keys: Keys, run_id: str) -> dict[str, Any]:
    """What the engine holds of one run, in comparable form (join counters only of nodes yet to fire)."""
    run = await redis.hgetall(keys.run(run_id))
    nodes = {n: json.loads(s) for n, s in (await redis.hgetall(keys.nodes(run_id))).items()}
    join = await redis.hgetall(keys.join(run_id))
    delayed = await redis.zrange(keys.shard_for(run_id).delayed, 0, -1, withscores=True)
    ir = json.loads(await redis.get(keys.ir(run_id)))
    pending = {n for n in ir["nodes"] if nodes.get(n, {}).get("status", "pending") == "pending"}
    return {
        # The rebuild records itself in the ledger, so the numbering moves on by its own entries.
        "run": {k: v for k, v in run.items() if k not in ("inputs", "started_ms", "rebuilt_ms", "ledger_seq")},
        "inputs": json.loads(run["inputs"]),
        # Postgres has the start time as the ledger wrote it: cjson keeps 14 significant digits.
        "started_ms": f"{float(run['started_ms']):.14g}",
        "nodes": nodes,
        "ctx": await redis.hgetall(keys.ctx(run_id)),
        "applied": await redis.smembers(keys.applied(run_id)),
        "join": {k: v for k, v in join.items() if k.partition(":")[0] in pending},
        "ir": ir,
        "delayed": sorted((m, s) for m, s in delayed if json.loads(m)["run_id"] == run_id),
        "deadline": await redis.zscore(keys.shard_for(run_id).run_deadlines, run_id),
    }


def gated() -> dict[str, Any]:
    """a -> gate -(approved)-> ship -> done, gate -(rejected)-> stop, a -> side -> done."""
    return {
        "name": "gated",
        "nodes": [
            node("a", output={"n": 1}),
            node("gate", "hitl", title="Ship?", timeout_s=600),
            node("side", output="{{ nodes.a.output.n }}"),
            node("ship", output="shipped"),
            node("stop", output="stopped"),
            node("done", output="{{ nodes.side.output }}"),
        ],
        "edges": [
            {"from": "a", "to": "gate"},
            {"from": "a", "to": "side"},
            {"from": "gate", "to": "ship", "branch": "approved"},
            {"from": "gate", "to": "stop", "branch": "rejected"},
            {"from": "ship", "to": "done"},
            {"from": "side", "to": "done"},
        ],
    }


async def test_a_rebuilt_run_is_the_run_it_was(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    hitl = HitlHandler(pg_pool, redis, keys)
    async with Engine(deployment, redis, handlers=[hitl], pool=pg_pool) as engine:
        run_id = await engine.submit(gated(), {"who": "me"}, timeout_s=600, recorded=True)
        await settled(engine, run_id, "gate", "waiting")
        before = await hot_state(redis, keys, run_id)
        assert await forget_run(redis, keys, run_id) > 0

        outcome = await rebuild(engine, run_id)

        assert outcome == RebuildOutcome(run_id, "rebuilt", "waiting", queued=[], waiting=["gate"])
        assert await hot_state(redis, keys, run_id) == before
        assert before["run"]["status"] == "waiting" and before["delayed"] and before["deadline"]
        [approval] = (await list_approvals(pg_pool, "tenant-test", status="pending", run_id=run_id))[0]
        await decide_approval(pg_pool, redis, keys, approval.id, ALICE, "approve")
        assert await engine.wait_ended(run_id) == "succeeded"
        assert await engine.output(run_id, "done") == 1
        assert (await engine.statuses(run_id))["stop"] == "skipped"
        await postgres_matches_redis(pg_pool, redis, keys, [run_id])


async def test_a_queued_delay_keeps_its_due_time(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    nodes = [node("a", output={"x": 1}), node("wait", "delay", seconds=1.5), node("b", output="{{ nodes.a.output.x }}")]
    definition = {
        "name": "delayed",
        "nodes": nodes,
        "edges": [{"from": "a", "to": "wait"}, {"from": "wait", "to": "b"}],
    }
    async with Engine(deployment, redis, pool=pg_pool) as engine:
        run_id = await engine.submit(definition, recorded=True)
        await settled(engine, run_id, "wait", "queued")
        before = await hot_state(redis, keys, run_id)
        await forget_run(redis, keys, run_id)
        await redis.delete(keys.shard_for(run_id).delayed)

        outcome = await rebuild(engine, run_id)

        assert (outcome.result, outcome.queued) == ("rebuilt", ["wait"])
        after = await hot_state(redis, keys, run_id)
        [(member, due)] = after["delayed"]
        [(original_member, original_due)] = before["delayed"]
        # Postgres holds the due time (queued_at) to the millisecond the ledger carried it with.
        assert member == original_member and abs(due - original_due) < 1
        assert after["nodes"]["wait"]["queued_at"] == before["nodes"]["wait"]["queued_at"]
        assert await engine.wait_ended(run_id) == "succeeded"
        assert await engine.output(run_id, "b") == 1
        await postgres_matches_redis(pg_pool, redis, keys, [run_id])


async def test_a_rebuilt_run_keeps_its_trace(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    definition = {
        "name": "traced",
        "nodes": [node("a", output=1), node("wait", "delay", seconds=1)],
        "edges": [{"from": "a", "to": "wait"}],
    }
    async with Engine(deployment, redis, pool=pg_pool) as engine:
        run_id = await engine.submit(definition, recorded=True, traceparent=traceparent)
        await settled(engine, run_id, "wait", "queued")
        [(queued, _)] = (await hot_state(redis, keys, run_id))["delayed"]
        assert json.loads(queued)["traceparent"] == traceparent
        assert await pg_pool.fetchval("SELECT traceparent FROM runs WHERE id = $1", run_id) == traceparent
        await forget_run(redis, keys, run_id)
        await redis.delete(keys.shard_for(run_id).delayed)

        await rebuild(engine, run_id)

        after = await hot_state(redis, keys, run_id)
        assert after["run"]["traceparent"] == traceparent
        [(requeued, _)] = after["delayed"]
        assert json.loads(requeued)["traceparent"] == traceparent
        assert await engine.wait_ended(run_id) == "succeeded"


class FlakyBuiltin(BuiltinHandler):
    """Fails node ``flaky``'s first attempt (retryably)."""

    node_type: ClassVar[str] = "builtin"

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        if ctx.node_id == "flaky" and ctx.token.attempt == 1:
            raise NodeFailed("first attempt fails", retryable=True)
        return await super().__call__(ctx)


@pytest.mark.parametrize("retry_recorded", [True, False], ids=["retry-recorded", "retry-lost"])
async def test_a_retry_keeps_its_attempt_and_backoff(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys, retry_recorded: bool
) -> None:
    flaky = {**node("flaky", output="ok"), "retry": {"max_attempts": 3, "backoff_s": 1.5}}
    definition = {"name": "retrying", "nodes": [node("a", "noop"), flaky], "edges": [{"from": "a", "to": "flaky"}]}
    async with Engine(deployment, redis, handlers=[FlakyBuiltin()], pool=pg_pool) as engine:
        run_id = await engine.submit(definition, recorded=True)
        await settled(engine, run_id, "flaky", "queued")
        before = await hot_state(redis, keys, run_id)
        await forget_run(redis, keys, run_id)
        await redis.delete(keys.shard_for(run_id).delayed)
        if not retry_recorded:
            # The ledger's tail was lost with Redis: Postgres saw attempt 1 fail, not attempt 2 queued.
            await pg_pool.execute("DELETE FROM run_steps WHERE run_id = $1 AND attempt = 2", run_id)

        outcome = await rebuild(engine, run_id)

        assert (outcome.result, outcome.queued) == ("rebuilt", ["flaky"])
        after = await hot_state(redis, keys, run_id)
        [(member, due)] = after["delayed"]
        [(original_member, original_due)] = before["delayed"]
        assert member == original_member and json.loads(member)["token_id"] == "0:flaky:2"
        # A lost retry is due its backoff after the failure ended (the coordinator decided a moment later).
        assert original_due - 200 <= due < original_due + 1
        assert after["applied"] == before["applied"]
        assert await engine.wait_ended(run_id) == "succeeded"
        assert (await engine.node_states(run_id))["flaky"]["attempt"] == 2
        await postgres_matches_redis(pg_pool, redis, keys, [run_id])


async def test_a_resumed_run_counts_only_what_its_epoch_kept(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    async with Engine(deployment, redis, pool=pg_pool) as engine:
        run_id = await engine.submit(chain(3), recorded=True)
        assert await engine.wait_ended(run_id) == "succeeded"
    # No worker runs now: the resumed run waits with n1 queued again and n2 reset, whose old step succeeded.
    assert (await resume_run(engine.scripts, run_id, from_node="n1")).nodes == ["n1", "n2"]
    async with Recorder(redis, pg_pool, keys, "rec-resume") as recorder:
        recording = asyncio.create_task(recorder.run())
        await eventually(lambda: step_status_is(pg_pool, run_id, "n1", "queued", attempt=2))
        await recorder.shutdown()
        await recording
    before = await hot_state(redis, keys, run_id)
    await forget_run(redis, keys, run_id)

    engine = Engine(deployment, redis, pool=pg_pool)
    outcome = await rebuild(engine, run_id)

    assert (outcome.result, outcome.queued) == ("rebuilt", ["n1"])
    after = await hot_state(redis, keys, run_id)
    assert after["nodes"]["n2"] == before["nodes"]["n2"] == {"status": "pending", "attempt": 1}
    assert after["run"]["epoch"] == "1" and after["nodes"]["n0"] == before["nodes"]["n0"]
    assert after["nodes"]["n1"]["attempt"] == 2 and after["applied"] == before["applied"]
    async with engine:
        assert await engine.wait_ended(run_id) == "succeeded"
        assert {n: s["attempt"] for n, s in (await engine.node_states(run_id)).items()} == {"n0": 1, "n1": 2, "n2": 2}
        await postgres_matches_redis(pg_pool, redis, keys, [run_id])


async def step_status_is(pool: asyncpg.Pool, run_id: str, node_id: str, status: str, *, attempt: int) -> bool:
    row = await pool.fetchrow(
        "SELECT status, epoch FROM run_steps WHERE run_id = $1 AND node_id = $2 AND attempt = $3",
        run_id,
        node_id,
        attempt,
    )
    return row is not None and row["status"] == status


async def test_concurrent_rebuilds_of_a_run_rebuild_it_once(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    nodes = [node("a", "noop"), node("wait", "delay", seconds=60)]
    definition = {"name": "slow", "nodes": nodes, "edges": [{"from": "a", "to": "wait"}]}
    async with Engine(deployment, redis, pool=pg_pool) as engine:
        run_id = await engine.submit(definition, recorded=True)
        await settled(engine, run_id, "wait", "queued")
        await forget_run(redis, keys, run_id)

        outcomes = await asyncio.gather(*(rebuild(engine, run_id) for _ in range(4)))

        assert sorted(o.result for o in outcomes) == ["exists", "exists", "exists", "rebuilt"]
        assert (await engine.event_types(run_id)).count("run_rebuilt") == 1
        assert await redis.zcard(keys.shard_for(run_id).delayed) == 1
        assert await rebuild(engine, run_id) == RebuildOutcome(run_id, "exists")


async def test_runs_that_are_not_live_or_not_rebuildable_are_left_alone(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with Engine(deployment, redis, pool=pg_pool) as engine:
        ended = await engine.submit(chain(1), recorded=True)
        assert await engine.wait_ended(ended) == "succeeded"
        await eventually(lambda: step_status_is(pg_pool, ended, "n0", "succeeded", attempt=1))
        await eventually(lambda: run_status_is(pg_pool, ended, "succeeded"))
        await forget_run(redis, engine.keys, ended)
        # A child run recorded before its IR was: Postgres cannot say what it runs.
        await pg_pool.execute(
            "INSERT INTO runs (id, tenant_id, status, parent_run_id, started_at) VALUES ('orphan', 't', 'running',"
            " 'p', now())"
        )

        assert await rebuild(engine, "nope") == RebuildOutcome("nope", "missing")
        assert await rebuild(engine, ended) == RebuildOutcome(ended, "ended", "succeeded")
        unrecoverable = await rebuild(engine, "orphan")
        assert unrecoverable.result == "unrecoverable" and "neither its definition nor its IR" in (
            unrecoverable.detail or ""
        )
        assert not await redis.exists(engine.keys.run("orphan"), engine.keys.run(ended))


async def run_status_is(pool: asyncpg.Pool, run_id: str, status: str) -> bool:
    return await pool.fetchval("SELECT status FROM runs WHERE id = $1", run_id) == status  # type: ignore[no-any-return]
