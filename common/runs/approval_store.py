"""The ``approvals`` table: opening, reading, listing, deciding and cancelling approvals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg
from pydantic import BaseModel, Field

ApprovalStatus = Literal["pending", "approved", "rejected", "cancelled", "expired"]
_COLUMNS = (
    "id, tenant_id, run_id, node_id, token_id, attempt, status, title, description, approvers, required_approvals,"
    " allow_self_approval, decisions, created_by, created_at, expires_at, decided_at, timeout_token"
)


class Approval(BaseModel):
    """An approval as the API shows it."""

    id: str
    run_id: str
    node_id: str
    status: ApprovalStatus
    title: str | None
    description: str | None
    decisions: list[dict[str, Any]] = Field(
        description="the decisions so far, oldest first: objects with decision, decided_by, key_id, owner, comment,"
        " decided_at (and reason, for a timeout)"
    )
    approvers: list[str]
    required_approvals: int
    created_at: datetime
    expires_at: datetime | None
    decided_at: datetime | None


@dataclass(frozen=True)
class ApprovalRow:
    """One ``approvals`` row with what deciding and resuming need besides the public shape."""

    approval: Approval
    tenant_id: str
    token_id: str
    attempt: int
    allow_self_approval: bool
    created_by: str | None
    timeout_token: str | None

    @property
    def id(self) -> str:
        return self.approval.id

    @property
    def run_id(self) -> str:
        return self.approval.run_id

    @property
    def node_id(self) -> str:
        return self.approval.node_id


@dataclass(frozen=True)
class NewApproval:
    """What a hitl token opens."""

    id: str
    tenant_id: str
    run_id: str
    node_id: str
    token_id: str
    attempt: int
    title: str
    description: str | None
    approvers: list[str]
    required_approvals: int
    allow_self_approval: bool
    created_by: str | None
    expires_at: datetime | None
    timeout_token: str | None


def _row(record: asyncpg.Record) -> ApprovalRow:
    approval = Approval(
        id=record["id"],
        run_id=record["run_id"],
        node_id=record["node_id"],
        status=record["status"],
        title=record["title"],
        description=record["description"],
        decisions=record["decisions"],
        approvers=record["approvers"],
        required_approvals=record["required_approvals"],
        created_at=record["created_at"],
        expires_at=record["expires_at"],
        decided_at=record["decided_at"],
    )
    return ApprovalRow(
        approval=approval,
        tenant_id=record["tenant_id"],
        token_id=record["token_id"],
        attempt=record["attempt"],
        allow_self_approval=record["allow_self_approval"],
        created_by=record["created_by"],
        timeout_token=record["timeout_token"],
    )


async def open_approval(pool: asyncpg.Pool, new: NewApproval) -> ApprovalRow:
    """Insert ``new``, or return the approval its token opened before (a redelivered token)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO approvals (id, tenant_id, run_id, node_id, token_id, attempt, title, description, approvers,"
            " required_approvals, allow_self_approval, created_by, expires_at, timeout_token)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            " ON CONFLICT (run_id, token_id) DO NOTHING",
            new.id,
            new.tenant_id,
            new.run_id,
            new.node_id,
            new.token_id,
            new.attempt,
            new.title,
            new.description,
            new.approvers,
            new.required_approvals,
            new.allow_self_approval,
            new.created_by,
            new.expires_at,
            new.timeout_token,
        )
        record = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM approvals WHERE run_id = $1 AND token_id = $2", new.run_id, new.token_id
        )
    return _row(record)


async def fetch_approval(
    conn: asyncpg.Pool | asyncpg.Connection, approval_id: str, *, tenant_id: str | None = None, lock: bool = False
) -> ApprovalRow | None:
    """The approval ``approval_id`` (of ``tenant_id`` when given); ``lock`` takes its row lock."""
    query = f"SELECT {_COLUMNS} FROM approvals WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2)"
    record = await conn.fetchrow(query + (" FOR UPDATE" if lock else ""), approval_id, tenant_id)
    return None if record is None else _row(record)


async def settle_approval(
    conn: asyncpg.Connection, approval_id: str, status: ApprovalStatus, decisions: list[dict[str, Any]]
) -> ApprovalRow:
    """Record ``decisions`` and ``status``; a status other than pending stamps ``decided_at``."""
    record = await conn.fetchrow(
        "UPDATE approvals SET status = $2, decisions = $3,"
        " decided_at = CASE WHEN $2 = 'pending' THEN NULL ELSE now() END"
        f" WHERE id = $1 RETURNING {_COLUMNS}",
        approval_id,
        status,
        decisions,
    )
    return _row(record)


async def list_approvals(
    pool: asyncpg.Pool,
    tenant_id: str,
    *,
    status: ApprovalStatus | None = None,
    run_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> tuple[list[Approval], bool]:
    """Up to ``limit`` of the tenant's approvals, newest first, after the (created_at, id) position ``after``.

    Returns the page and whether more follow.
    """
    after_ts, after_id = after if after else (None, None)
    records = await pool.fetch(
        f"SELECT {_COLUMNS} FROM approvals WHERE tenant_id = $1"
        " AND ($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR run_id = $3)"
        " AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))"
        " ORDER BY created_at DESC, id DESC LIMIT $6",
        tenant_id,
        status,
        run_id,
        after_ts,
        after_id,
        limit + 1,
    )
    return [_row(r).approval for r in records[:limit]], len(records) > limit


async def cancel_pending(pool: asyncpg.Pool, run_id: str) -> list[ApprovalRow]:
    """Cancel every pending approval of ``run_id``; returns those cancelled."""
    records = await pool.fetch(
        "UPDATE approvals SET status = 'cancelled', decided_at = now()"
        f" WHERE run_id = $1 AND status = 'pending' RETURNING {_COLUMNS}",
        run_id,
    )
    return [_row(r) for r in records]


async def run_approvals(conn: asyncpg.Pool | asyncpg.Connection, run_id: str) -> list[ApprovalRow]:
    """Every approval of ``run_id``, oldest first."""
    records = await conn.fetch(f"SELECT {_COLUMNS} FROM approvals WHERE run_id = $1 ORDER BY created_at", run_id)
    return [_row(r) for r in records]


async def pending_runs(pool: asyncpg.Pool) -> list[str]:
    """Run ids that have a pending approval."""
    return [r["run_id"] for r in await pool.fetch("SELECT DISTINCT run_id FROM approvals WHERE status = 'pending'")]


async def recently_decided(pool: asyncpg.Pool, *, older_than_s: float, within_s: float) -> list[ApprovalRow]:
    """Approvals approved or rejected between ``within_s`` and ``older_than_s`` seconds ago."""
    records = await pool.fetch(
        f"SELECT {_COLUMNS} FROM approvals WHERE status IN ('approved', 'rejected')"
        " AND decided_at > now() - make_interval(secs => $1) AND decided_at <= now() - make_interval(secs => $2)",
        within_s,
        older_than_s,
    )
    return [_row(r) for r in records]
