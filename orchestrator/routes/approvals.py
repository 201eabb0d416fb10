"""Approvals of hitl nodes: list, show, decide (exactly one decision settles each)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from common.runs.approval_store import Approval, ApprovalStatus, fetch_approval, list_approvals
from common.runs.approvals import ApprovalConflict, ApprovalForbidden, ApprovalNotFound, decide_approval
from orchestrator._errors import ApiError, not_found
from orchestrator._pagination import MAX_LIMIT, decode_cursor, encode_cursor
from orchestrator._state import Decider, Reader, State

router = APIRouter(tags=["approvals"])
MAX_COMMENT_CHARS = 4000


class ApprovalPage(BaseModel):
    """One page of approvals, newest first; ``next_cursor`` is null on the last page."""

    items: list[Approval]
    next_cursor: str | None


class DecideRequest(BaseModel):
    """A decision on one approval."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["approve", "reject"]
    comment: str | None = Field(default=None, max_length=MAX_COMMENT_CHARS)


@router.get("/api/v1/approvals")
async def list_route(
    state: State,
    principal: Reader,
    status: ApprovalStatus | None = None,
    run_id: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> ApprovalPage:
    """The caller's tenant's approvals, optionally of one status and one run."""
    after = decode_cursor(cursor) if cursor else None
    items, more = await list_approvals(
        state.pool, principal.tenant_id, status=status, run_id=run_id, after=after, limit=limit
    )
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
    return ApprovalPage(items=items, next_cursor=next_cursor)


@router.get("/api/v1/approvals/{approval_id}")
async def show_route(approval_id: str, state: State, principal: Reader) -> Approval:
    """One approval of the caller's tenant; 404 otherwise."""
    row = await fetch_approval(state.pool, approval_id, tenant_id=principal.tenant_id)
    if row is None:
        raise not_found("approval", approval_id)
    return row.approval


@router.post("/api/v1/approvals/{approval_id}/decide")
async def decide_route(approval_id: str, body: DecideRequest, state: State, principal: Decider) -> Approval:
    """Approve or reject; 403 for keys that may not decide, 409 once the approval is settled."""
    try:
        return await decide_approval(
            state.pool, state.redis, state.keys, approval_id, principal, body.decision, body.comment
        )
    except ApprovalNotFound:
        raise not_found("approval", approval_id) from None
    except ApprovalForbidden as exc:
        raise ApiError(403, exc.message) from None
    except ApprovalConflict as exc:
        raise ApiError(409, exc.message) from None
