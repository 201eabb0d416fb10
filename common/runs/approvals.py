"""Deciding approvals: who may, exactly once, and the completion that resumes the run."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import redis.asyncio as aioredis

from common.auth import Principal, owner_of_key
from common.errors import AobError
from common.keys import Keys
from common.roles import ROLES, Permission
from common.runs.approval_store import (
    Approval,
    ApprovalRow,
    ApprovalStatus,
    cancel_pending,
    fetch_approval,
    settle_approval,
)
from common.runs.messages import TERMINAL_RUN_STATUSES, CompletionSignal, Event
from common.runs.records import recorded_status
from common.runs.scripts import now_ms

logger = logging.getLogger(__name__)

Decision = Literal["approve", "reject"]
SYSTEM = "system"
# Same cap as the run-state scripts, so an approval's events never grow the run's stream unbounded.
EVENTS_MAXLEN = 100_000
TENANT_EVENTS_MAXLEN = 10_000


class ApprovalNotFound(AobError):
    """No approval with that id in the caller's tenant."""

    code = "not_found"


class ApprovalForbidden(AobError):
    """The caller may not decide this approval."""

    code = "forbidden"


class ApprovalConflict(AobError):
    """The approval is no longer open to this decision (already decided, cancelled, or decided by this key)."""

    code = "conflict"


async def decide_approval(
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    keys: Keys,
    approval_id: str,
    principal: Principal,
    decision: Decision,
    comment: str | None = None,
) -> Approval:
    """Record ``principal``'s decision; the one that settles the approval resumes the run.

    Returns the approval after the decision. Raises ``ApprovalNotFound``, ``ApprovalForbidden`` or
    ``ApprovalConflict`` (already settled, run ended, or this key already decided).
    """
    ended: str | None = None
    async with pool.acquire() as conn, conn.transaction():
        # The row lock serialises concurrent deciders: each sees the decisions of those before it.
        row = await fetch_approval(conn, approval_id, tenant_id=principal.tenant_id, lock=True)
        if row is None:
            raise ApprovalNotFound(f"approval {approval_id!r}: not found")
        starter = await owner_of_key(conn, row.created_by) if row.created_by is not None else None
        _check_may_decide(row, principal, starter)
        if row.approval.status != "pending":
            raise ApprovalConflict(f"approval {approval_id}: already {row.approval.status}")
        run_status = await redis.hget(keys.run(row.approval.run_id), "status")
        if run_status is None:
            # Redis lost the run but Postgres holds it live: the decision stands, and the rebuilt run gets it.
            run_status = await recorded_status(conn, row.approval.run_id)
        if run_status is None or run_status in TERMINAL_RUN_STATUSES:
            ended = run_status or "gone"
            await settle_approval(conn, row.id, "cancelled", row.approval.decisions)
        else:
            if any(_decider(d) == principal.person for d in row.approval.decisions):
                raise ApprovalConflict(
                    f"approval {approval_id}: {principal.person!r} has already decided (key {principal.name!r})"
                )
            entry = _entry(
                decision, principal.name or principal.key_id, comment, key_id=principal.key_id, owner=principal.person
            )
            decisions = [*row.approval.decisions, entry]
            settled = await settle_approval(conn, row.id, _status_after(row, decisions), decisions)
    if ended is not None:
        await _forget_timeout(redis, keys, [row])
        raise ApprovalConflict(f"approval {approval_id}: run {row.approval.run_id} has ended ({ended})")
    await asyncio.shield(_announce(redis, keys, settled, entry))
    return settled.approval


async def apply_timeout(
    pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, approval_id: str, on_timeout: Decision
) -> Approval | None:
    """Settle a still-pending approval with ``on_timeout``, decided by the system; None if already settled."""
    async with pool.acquire() as conn, conn.transaction():
        row = await fetch_approval(conn, approval_id, lock=True)
        if row is None or row.approval.status != "pending":
            return None
        entry = _entry(on_timeout, SYSTEM, None, reason="timeout")
        status: ApprovalStatus = "approved" if on_timeout == "approve" else "rejected"
        settled = await settle_approval(conn, row.id, status, [*row.approval.decisions, entry])
    logger.info("approval %s of run %s timed out: %s", approval_id, row.approval.run_id, status)
    await asyncio.shield(_announce(redis, keys, settled, entry))
    return settled.approval


async def cancel_approvals(pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys, run_id: str) -> list[str]:
    """Cancel the pending approvals of ``run_id`` and their timeouts; returns the cancelled ids."""
    cancelled = await cancel_pending(pool, run_id)
    await _forget_timeout(redis, keys, cancelled)
    if cancelled:
        logger.info("cancelled %d approvals of run %s", len(cancelled), run_id)
    return [row.id for row in cancelled]


def completion_for(row: ApprovalRow) -> CompletionSignal:
    """The ``decided`` completion of a settled approval: same token as the hitl node, branch by outcome."""
    approval = row.approval
    approved = approval.status == "approved"
    last = approval.decisions[-1]
    output = {
        "approved": approved,
        "decision": "approve" if approved else "reject",
        "comment": last.get("comment"),
        "decided_by": last["decided_by"],
        "decisions": approval.decisions,
    }
    output_ref = json.dumps(output, separators=(",", ":"), ensure_ascii=False)
    return CompletionSignal.decided(row, output_ref, "approved" if approved else "rejected", ended_at_ms=now_ms())


def approver_matches(entry: str, principal: Principal) -> bool:
    """Whether an ``approvers`` entry names ``principal``: a role name its role, anything else its owner or key id."""
    if entry in ROLES:
        return principal.role == entry
    return entry in (principal.person, principal.key_id)


def _check_may_decide(row: ApprovalRow, principal: Principal, starter: str | None) -> None:
    if not principal.may(Permission.DECIDE):
        raise ApprovalForbidden(f"approval {row.id}: role {principal.role} may not decide approvals")
    approvers = row.approval.approvers
    if approvers and not any(approver_matches(entry, principal) for entry in approvers):
        raise ApprovalForbidden(
            f"approval {row.id}: only {', '.join(approvers)} may decide"
            f" ({principal.person!r}, key {principal.name!r} with role {principal.role}, is none of them)"
        )
    if not row.allow_self_approval and starter is not None and starter in (principal.person, principal.key_id):
        raise ApprovalForbidden(
            f"approval {row.id}: {starter!r} started run {row.approval.run_id} and may not decide it with any of"
            " their keys (allow_self_approval is false)"
        )


def _decider(decision: dict[str, Any]) -> Any:
    # Decisions recorded before owners existed carry only the key id.
    return decision.get("owner") or decision.get("key_id")


def _status_after(row: ApprovalRow, decisions: list[dict[str, Any]]) -> ApprovalStatus:
    # One reject ends it; approvals count towards the quorum once per owner (a person's second key adds nothing).
    if decisions[-1]["decision"] == "reject":
        return "rejected"
    approvers = {_decider(d) for d in decisions if d["decision"] == "approve"}
    return "approved" if len(approvers) >= row.approval.required_approvals else "pending"


def _entry(
    decision: Decision,
    decided_by: str,
    comment: str | None,
    *,
    key_id: str | None = None,
    owner: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "decision": decision,
        "decided_by": decided_by,
        "key_id": key_id,
        "owner": owner,
        "comment": comment,
        "decided_at": datetime.now(UTC).isoformat(),
    }
    if reason is not None:
        entry["reason"] = reason
    return entry


async def _announce(redis: aioredis.Redis, keys: Keys, row: ApprovalRow, entry: dict[str, Any]) -> None:
    """Append ``approval_decided``; a settling decision also pushes the completion and drops the timeout."""
    approval = row.approval
    event = Event(
        type="approval_decided",
        run_id=approval.run_id,
        node_id=approval.node_id,
        ts=int(now_ms()),
        data={"approval_id": approval.id, "status": approval.status, **entry},
    )
    shard = keys.shard_for(approval.run_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.events(approval.run_id), {"e": event.stored()}, maxlen=EVENTS_MAXLEN, approximate=True)
        # Notifications follow the tenant stream; the Lua scripts cap it at the same length.
        pipe.xadd(
            shard.tenant_events(row.tenant_id), {"e": event.stored()}, maxlen=TENANT_EVENTS_MAXLEN, approximate=True
        )
        if approval.status != "pending":
            pipe.rpush(shard.completion_signals, completion_for(row).model_dump_json(exclude_none=True))
            if row.timeout_token:
                pipe.zrem(shard.delayed, row.timeout_token)
        await pipe.execute()


async def _forget_timeout(redis: aioredis.Redis, keys: Keys, rows: list[ApprovalRow]) -> None:
    for row in rows:
        if row.timeout_token:
            await redis.zrem(keys.shard_for(row.approval.run_id).delayed, row.timeout_token)
