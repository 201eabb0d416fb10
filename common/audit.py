"""The ``audit_log`` table: which key did what to which target, with the details of the outcome."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

_COLUMNS = "id, tenant_id, key_id, action, target, detail, at"


class AuditEntry(BaseModel):
    """One audited action; ``tenant_id`` is the tenant whose data it touched."""

    id: str
    tenant_id: str
    key_id: str
    action: str
    target: str
    detail: dict[str, Any] = Field(description="free-form: what the action touched and its outcome")
    at: datetime


async def record_audit(
    db: asyncpg.Pool | asyncpg.Connection,
    *,
    tenant_id: str,
    key_id: str,
    action: str,
    target: str,
    detail: dict[str, Any],
) -> str:
    """Insert one entry (in ``db``'s transaction when ``db`` is a connection in one); returns its id."""
    entry_id: str = await db.fetchval(
        "INSERT INTO audit_log (tenant_id, key_id, action, target, detail) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        tenant_id,
        key_id,
        action,
        target,
        detail,
    )
    return entry_id


async def add_audit_detail(db: asyncpg.Pool | asyncpg.Connection, entry_id: str, detail: dict[str, Any]) -> None:
    """Merge ``detail`` into an entry's, for outcomes known only once the action is done."""
    await db.execute("UPDATE audit_log SET detail = detail || $2::jsonb WHERE id = $1", entry_id, detail)


async def list_audit(
    pool: asyncpg.Pool,
    *,
    tenant_id: str | None,
    action: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> tuple[list[AuditEntry], bool]:
    """Entries newest first (of one tenant, or of all when ``tenant_id`` is None), after the cursor position
    ``after``; returns them and whether more follow."""
    conditions: list[str] = []
    args: list[Any] = []
    if tenant_id is not None:
        args.append(tenant_id)
        conditions.append(f"tenant_id = ${len(args)}")
    if action is not None:
        args.append(action)
        conditions.append(f"action = ${len(args)}")
    if after is not None:
        args += list(after)
        conditions.append(f"(at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM audit_log {where} ORDER BY at DESC, id DESC LIMIT ${len(args)}", *args
    )
    return [AuditEntry(**dict(row)) for row in rows[:limit]], len(rows) > limit
