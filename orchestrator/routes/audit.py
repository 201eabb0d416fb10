"""The audit log (admin): operators' actions, newest first.

An admin reads the entries of its tenant (actions on its runs' data, and its tenant's keys' actions on data of no
tenant); the bootstrap admin reads every tenant's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from common.audit import AuditEntry, list_audit
from orchestrator._pagination import MAX_LIMIT, decode_cursor, encode_cursor
from orchestrator._state import Admin, State

router = APIRouter(prefix="/api/v1", tags=["admin"])


class AuditPage(BaseModel):
    """One page of audit entries, newest first; ``next_cursor`` is null on the last page."""

    items: list[AuditEntry]
    next_cursor: str | None


@router.get("/audit")
async def audit_route(
    state: State,
    caller: Admin,
    action: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> AuditPage:
    """Audited actions newest first, optionally of one ``action`` (e.g. ``dead_letter.replay``)."""
    after = decode_cursor(cursor) if cursor else None
    tenant_id = None if caller.is_bootstrap else caller.tenant_id
    items, more = await list_audit(state.pool, tenant_id=tenant_id, action=action, after=after, limit=limit)
    next_cursor = encode_cursor(items[-1].at, items[-1].id) if more else None
    return AuditPage(items=items, next_cursor=next_cursor)
