"""Audited actions: the ``audit_log`` row is written in the same request, committed only if the action happened."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from common.audit import add_audit_detail, record_audit
from common.auth import Principal
from orchestrator._state import AppState


@asynccontextmanager
async def audited(
    state: AppState, caller: Principal, action: str, target: str, *, tenant_id: str, detail: dict[str, Any]
) -> AsyncIterator[dict[str, Any]]:
    """Run the block as ``action`` on ``target``; what the block adds to the yielded dict joins the row's detail.

    The row is inserted before the block and committed after it, so an action that raises leaves no row, and one
    that happened cannot go unrecorded because the insert failed.
    """
    async with state.pool.acquire() as conn, conn.transaction():
        entry_id = await record_audit(
            conn, tenant_id=tenant_id, key_id=caller.key_id, action=action, target=target, detail=detail
        )
        outcome: dict[str, Any] = {}
        yield outcome
        if outcome:
            await add_audit_detail(conn, entry_id, outcome)
