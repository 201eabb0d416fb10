"""Human-in-the-loop approvals through the engine: waiting, deciding, quorum, timeouts, restarts, cancelling."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.auth import Principal
from common.keys import Keys
from common.runs.approval_store import Approval, list_approvals
from common.runs.approvals import ApprovalConflict, ApprovalForbidden, decide_approval
from common.runs.cancel import cancel_run
from common.runs.messages import Token
from common.runs.scripts import Scripts
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.hitl import ApprovalSweeper, HitlHandler, hitl_handler

TENANT = "tenant-test"
ALICE = Principal("key-alice", TENANT, "editor", "alice", owner="alice")
BOB = Principal("key-bob", TENANT, "editor", "bob", owner="bob")


def gate(node_id: str = "gate", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "hitl", "config": {"title": "Ship it?", **config}}


def t(node_id: str, output: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "transform", "config": {"output": output}}


def approval_flow(**config: Any) -> dict[str, Any]:
    """gate --approved--> ship, gate --rejected--> stop."""
    return {
        "name": "approval",
        "nodes": [gate(**config), t("ship", "shipped"), t("stop", "stopped")],
        "edges": [
            {"from": "gate", "to": "ship", "branch": "approved"},
            {"from": "gate", "to": "stop", "branch": "rejected"},
        ],
    }


@pytest.fixture
async def engine(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> AsyncIterator[Engine]:
    async with Engine(deployment, redis, handlers=[HitlHandler(pg_pool, redis, keys)], pool=pg_pool) as engine:
        yield engine


async def pending(engine: Engine, run_id: str, count: int = 1) -> list[Approval]:
    """Wait until ``run_id`` has ``count`` pending approvals, each held by its waiting node; return them (oldest
    first). The row is written before the node holds it: a run ended in between has its approval cancelled by the
    handler, which would race whatever a test does next."""
    assert engine.pool is not None

    async def check() -> list[Approval]:
        items, _ = await list_approvals(engine.pool, TENANT, status="pending", run_id=run_id)
        assert len(items) == count, f"{len(items)} pending approvals"
        states = await engine.node_states(run_id)
        for item in items:
            state = states.get(item.node_id, {})
            assert (state.get("status"), state.get("approval_id")) == ("waiting", item.id), state
        return items[::-1]

    return await eventually(check)


async def decide(engine: Engine, approval_id: str, who: Principal, decision: str, comment: str | None = None) -> Any:
    assert engine.pool is not None
    return await decide_approval(engine.pool, engine.redis, engine.keys, approval_id, who, decision, comment)  # type: ignore[arg-type]


async def test_approve_runs_the_approved_branch(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    flow = approval_flow(title="Ship {{ inputs.what }}?", description="{{ inputs.what }} is ready")
    run_id = await engine.submit(flow, {"what": "v2"})
    [approval] = await pending(engine, run_id)
    assert (approval.title, approval.description, approval.node_id) == ("Ship v2?", "v2 is ready", "gate")

    async def waiting() -> bool:
        run = await engine.run_hash(run_id)
        return run["status"] == "waiting" and run["pending_approvals"] == "1"

    await eventually(waiting)
    assert (await engine.statuses(run_id))["gate"] == "waiting"
    [requested] = [e for e in await engine.events(run_id) if e["type"] == "approval_requested"]
    assert requested["data"] == {
        "approval_id": approval.id,
        "title": "Ship v2?",
        "description": "v2 is ready",
        "expires_at": None,
    }

    decided = await decide(engine, approval.id, ALICE, "approve", "looks good")
    assert decided.status == "approved" and decided.decided_at is not None
    assert await engine.wait_ended(run_id) == "succeeded"
    assert await engine.statuses(run_id) == {"gate": "succeeded", "ship": "succeeded", "stop": "skipped"}
    output = await engine.output(run_id, "gate")
    assert output["approved"] is True and output["decision"] == "approve"
    assert (output["comment"], output["decided_by"]) == ("looks good", "alice")
    assert [d["decided_by"] for d in output["decisions"]] == ["alice"]
    assert "approval_decided" in await engine.event_types(run_id, "gate")
    with pytest.raises(ApprovalConflict, match="already approved"):
        await decide(engine, approval.id, BOB, "reject")


async def test_reject_runs_the_rejected_branch_and_output_conditions_see_it(
    engine: Engine, pg_pool: asyncpg.Pool
) -> None:
    flow = approval_flow()
    flow["nodes"].append(t("audit", "audited"))
    flow["edges"].append({"from": "gate", "to": "audit", "when": "$.approved == false"})
    run_id = await engine.submit(flow)
    [approval] = await pending(engine, run_id)
    await decide(engine, approval.id, ALICE, "reject", "not yet")
    assert await engine.wait_ended(run_id) == "succeeded"
    statuses = await engine.statuses(run_id)
    assert statuses == {"gate": "succeeded", "ship": "skipped", "stop": "succeeded", "audit": "succeeded"}
    assert (await engine.output(run_id, "gate"))["approved"] is False


async def test_quorum_of_two_resumes_on_the_second_approval(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow(required_approvals=2))
    [approval] = await pending(engine, run_id)
    first = await decide(engine, approval.id, ALICE, "approve")
    assert first.status == "pending" and len(first.decisions) == 1
    with pytest.raises(ApprovalConflict, match="'alice' has already decided"):
        await decide(engine, approval.id, ALICE, "approve")
    assert (await engine.run_hash(run_id))["status"] == "waiting"
    assert (await engine.statuses(run_id))["gate"] == "waiting"
    second = await decide(engine, approval.id, BOB, "approve")
    assert second.status == "approved"
    assert await engine.wait_ended(run_id) == "succeeded"
    assert [d["decided_by"] for d in (await engine.output(run_id, "gate"))["decisions"]] == ["alice", "bob"]


async def test_one_reject_ends_a_quorum(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow(required_approvals=2))
    [approval] = await pending(engine, run_id)
    await decide(engine, approval.id, ALICE, "approve")
    assert (await decide(engine, approval.id, BOB, "reject")).status == "rejected"
    assert await engine.wait_ended(run_id) == "succeeded"
    assert (await engine.statuses(run_id))["stop"] == "succeeded"


async def test_parallel_approvals_each_resume_their_own_branch_once(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    flow = {
        "name": "two-gates",
        "nodes": [t("start", 1), gate("g1"), gate("g2"), t("a1", "one"), t("a2", "two"), t("end", "done")],
        "edges": [
            {"from": "start", "to": "g1"},
            {"from": "start", "to": "g2"},
            {"from": "g1", "to": "a1", "branch": "approved"},
            {"from": "g2", "to": "a2", "branch": "approved"},
            {"from": "a1", "to": "end"},
            {"from": "a2", "to": "end"},
        ],
    }
    run_id = await engine.submit(flow)
    approvals = {a.node_id: a for a in await pending(engine, run_id, count=2)}
    await eventually(lambda: _pending_count(engine, run_id, 2))
    await decide(engine, approvals["g2"].id, ALICE, "approve")

    async def a2_done() -> bool:
        return (await engine.statuses(run_id)).get("a2") == "succeeded"

    await eventually(a2_done)
    run = await engine.run_hash(run_id)
    assert (run["status"], run["pending_approvals"]) == ("waiting", "1")
    assert "a1" not in await engine.statuses(run_id)
    await decide(engine, approvals["g1"].id, ALICE, "approve")
    assert await engine.wait_ended(run_id) == "succeeded"
    for node_id in ("a1", "a2", "end"):
        assert (await engine.event_types(run_id, node_id)).count("node_queued") == 1, node_id
    assert (await engine.run_hash(run_id))["pending_approvals"] == "0"


async def _pending_count(engine: Engine, run_id: str, count: int) -> bool:
    return (await engine.run_hash(run_id)).get("pending_approvals") == str(count)


async def test_concurrent_decisions_one_wins(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow())
    [approval] = await pending(engine, run_id)
    deciders = [Principal(f"key-{i}", TENANT, "editor", f"user{i}", owner=f"user{i}") for i in range(10)]
    results = await asyncio.gather(
        *(decide(engine, approval.id, p, "approve" if i % 2 else "reject") for i, p in enumerate(deciders)),
        return_exceptions=True,
    )
    winners = [r for r in results if isinstance(r, Approval)]
    assert len(winners) == 1, results
    assert all(isinstance(r, ApprovalConflict) for r in results if r is not winners[0])
    assert await engine.wait_ended(run_id) == "succeeded"
    branch = "ship" if winners[0].status == "approved" else "stop"
    assert (await engine.statuses(run_id))[branch] == "succeeded"
    assert len(winners[0].decisions) == 1


async def test_timeout_applies_the_default_decided_by_the_system(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow(timeout_s=0.3, on_timeout="approve"))
    [approval] = await pending(engine, run_id)
    assert approval.expires_at is not None
    assert await engine.wait_ended(run_id) == "succeeded"
    assert (await engine.statuses(run_id))["ship"] == "succeeded"
    output = await engine.output(run_id, "gate")
    assert output["decided_by"] == "system" and output["decisions"][0]["reason"] == "timeout"
    with pytest.raises(ApprovalConflict, match="already approved"):
        await decide(engine, approval.id, ALICE, "reject")
    assert await engine.redis.zcard(engine.keys.shard_for(run_id).delayed) == 0


async def test_a_decision_before_the_timeout_removes_it(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow(timeout_s=3600))
    [approval] = await pending(engine, run_id)
    await eventually(lambda: _delayed_count(engine, run_id, 1))
    await decide(engine, approval.id, ALICE, "reject")
    assert await engine.wait_ended(run_id) == "succeeded"
    assert await engine.redis.zcard(engine.keys.shard_for(run_id).delayed) == 0


async def _delayed_count(engine: Engine, run_id: str, count: int) -> bool:
    return int(await engine.redis.zcard(engine.keys.shard_for(run_id).delayed)) == count


async def test_pending_approval_survives_a_restart(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    handlers = [HitlHandler(pg_pool, redis, keys)]
    async with Engine(deployment, redis, handlers=handlers, pool=pg_pool) as first:
        run_id = await first.submit(approval_flow())
        [approval] = await pending(first, run_id)
        await eventually(lambda: _pending_count(first, run_id, 1))
    async with Engine(deployment, redis, handlers=[HitlHandler(pg_pool, redis, keys)], pool=pg_pool) as second:
        assert (await second.run_hash(run_id))["status"] == "waiting"
        await decide(second, approval.id, BOB, "approve")
        assert await second.wait_ended(run_id) == "succeeded"
        assert (await second.statuses(run_id))["ship"] == "succeeded"


async def test_cancelling_the_run_cancels_its_approvals(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    from common.runs.approvals import cancel_approvals

    run_id = await engine.submit(approval_flow(timeout_s=3600))
    [approval] = await pending(engine, run_id)
    await eventually(lambda: _delayed_count(engine, run_id, 1))
    assert await cancel_run(engine.scripts, run_id) == "ok"
    assert await cancel_approvals(pg_pool, engine.redis, engine.keys, run_id) == [approval.id]
    assert await engine.redis.zcard(engine.keys.shard_for(run_id).delayed) == 0
    assert (await engine.run_hash(run_id))["status"] == "cancelled"
    assert (await engine.statuses(run_id))["gate"] == "cancelled"
    with pytest.raises(ApprovalConflict, match="already cancelled"):
        await decide(engine, approval.id, ALICE, "approve")


async def test_who_may_decide(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    flow = approval_flow(approvers=["carol", "admin"])
    run_id = await engine.submit(flow, started_by="key-carol")
    [approval] = await pending(engine, run_id)
    with pytest.raises(
        ApprovalForbidden, match=r"only carol, admin may decide \('alice', key 'alice' with role editor"
    ):
        await decide(engine, approval.id, ALICE, "approve")
    carol = Principal("key-carol", TENANT, "editor", "carol", owner="carol")
    with pytest.raises(ApprovalForbidden, match=r"started run .* may not decide it"):
        await decide(engine, approval.id, carol, "approve")
    outsider = Principal("key-x", "other-tenant", "admin", "x")
    with pytest.raises(Exception, match="not found"):
        await decide(engine, approval.id, outsider, "approve")
    admin = Principal("key-admin", TENANT, "admin", "root")
    assert (await decide(engine, approval.id, admin, "approve")).status == "approved"
    assert await engine.wait_ended(run_id) == "succeeded"


async def test_self_approval_when_allowed(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow(allow_self_approval=True), started_by=ALICE.key_id)
    [approval] = await pending(engine, run_id)
    assert (await decide(engine, approval.id, ALICE, "approve")).status == "approved"
    assert await engine.wait_ended(run_id) == "succeeded"


async def test_redelivered_token_opens_no_second_approval(engine: Engine, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow())
    [approval] = await pending(engine, run_id)
    token = Token(token_id="0:gate:1", run_id=run_id, node_id="gate", type="hitl", attempt=1, ir_version=1)
    stream = engine.keys.shard_for(run_id).tasks("hitl")
    await engine.redis.xadd(stream, {"t": token.model_dump_json()})

    async def consumed() -> bool:
        return int(await engine.redis.xlen(stream)) == 0

    await eventually(consumed)
    assert [a.id for a in await pending(engine, run_id)] == [approval.id]
    assert (await engine.run_hash(run_id))["pending_approvals"] == "1"
    assert (await engine.event_types(run_id, "gate")).count("approval_requested") == 1
    await decide(engine, approval.id, ALICE, "approve")
    assert await engine.wait_ended(run_id) == "succeeded"


async def test_sweeper_repushes_a_lost_completion_and_cancels_orphans(
    engine: Engine, deployment: Deployment, pg_pool: asyncpg.Pool
) -> None:
    lost = await engine.submit(approval_flow())
    [approval] = await pending(engine, lost)
    # A decision committed in Postgres whose completion push never happened (the API died in between).
    decisions = [{"decision": "approve", "decided_by": "alice", "key_id": "key-alice", "comment": None}]
    await pg_pool.execute(
        "UPDATE approvals SET status = 'approved', decisions = $2, decided_at = now() WHERE id = $1",
        approval.id,
        decisions,
    )
    orphan = await engine.submit(approval_flow())
    [orphaned] = await pending(engine, orphan)
    await Scripts(engine.redis, engine.keys).run_script("end_run", orphan, "timed_out", "")
    settings = deployment.replace(hitl_repush_grace_s=0).worker()
    sweeper = ApprovalSweeper(pg_pool, engine.redis, engine.keys, settings)
    assert await sweeper.sweep() == (1, 1)
    assert await engine.wait_ended(lost) == "succeeded"
    assert (await engine.statuses(lost))["ship"] == "succeeded"
    assert await sweeper.sweep() == (0, 0)
    status = await pg_pool.fetchval("SELECT status FROM approvals WHERE id = $1", orphaned.id)
    assert status == "cancelled"
    assert json.loads(await engine.redis.hget(engine.keys.nodes(lost), "gate"))["status"] == "succeeded"


async def test_worker_handler_sweeps_on_start(engine: Engine, deployment: Deployment, pg_pool: asyncpg.Pool) -> None:
    run_id = await engine.submit(approval_flow())
    [approval] = await pending(engine, run_id)
    await cancel_run(engine.scripts, run_id)
    settings = deployment.worker()
    async with hitl_handler(settings, pg_pool, engine.redis) as handler:
        assert handler.node_type == "hitl"

        async def cancelled() -> bool:
            status = await pg_pool.fetchval("SELECT status FROM approvals WHERE id = $1", approval.id)
            return bool(status == "cancelled")

        await eventually(cancelled)
