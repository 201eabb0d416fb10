"""Dead letters (admin): list, show, replay, discard what no consumer could handle; each action is audited.

An admin sees the dead letters of its tenant's runs; the bootstrap admin (the deployment's operator) sees every
one, including those that name no run this deployment knows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from common.auth import Principal
from common.runs.dead_letter_store import ENTRY_ID, DeadLetterStore, Located, ReplayRefused
from common.runs.dead_letters import DeadLetterKind
from orchestrator._audit import audited
from orchestrator._errors import ApiError, not_found
from orchestrator._pagination import MAX_LIMIT, decode_cursor, encode_cursor
from orchestrator._state import Admin, AppState, State

router = APIRouter(prefix="/api/v1/dead-letters", tags=["dead letters"])


class DeadLetterView(BaseModel):
    """A dead letter as the API shows it; ``payload`` is the parked message decoded (its text when not JSON)."""

    id: str
    kind: DeadLetterKind
    reason: str
    source: str
    source_id: str | None
    run_id: str | None
    node_id: str | None
    token_id: str | None
    tenant_id: str | None
    by: str | None
    at: datetime
    payload: Any = Field(description="free-form: the parked message as JSON, or its text")


class DeadLetterPageView(BaseModel):
    """Newest first; a page may hold fewer than ``limit`` items while ``next_cursor`` says more may follow."""

    items: list[DeadLetterView]
    next_cursor: str | None


class ReplayView(BaseModel):
    """Where a replayed message went: ``target`` (a stream, with its new ``entry_id``, or the signals list)."""

    id: str
    kind: DeadLetterKind
    target: str
    entry_id: str | None


def _view(located: Located) -> DeadLetterView:
    letter = located.letter
    return DeadLetterView(
        id=letter.id or "",
        kind=letter.kind,
        reason=letter.reason,
        source=letter.source,
        source_id=letter.source_id,
        run_id=letter.run_id,
        node_id=letter.node_id,
        token_id=letter.token_id,
        tenant_id=located.tenant_id,
        by=letter.by,
        at=_at(letter.at_ms),
        payload=letter.payload_value(),
    )


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _scope(caller: Principal) -> str | None:
    """The tenant whose dead letters ``caller`` may see; None for all of them."""
    return None if caller.is_bootstrap else caller.tenant_id


def _checked_id(letter_id: str) -> str:
    if not ENTRY_ID.fullmatch(letter_id):
        raise ApiError(
            422, f"dead letter id: expected a stream entry id '<ms>-<n>' (e.g. 1712345678901-0), got {letter_id[:60]!r}"
        )
    return letter_id


async def _find(state: AppState, caller: Principal, letter_id: str) -> tuple[DeadLetterStore, Located]:
    store = DeadLetterStore(state.redis, state.keys, state.pool)
    located = await store.get(_checked_id(letter_id))
    scope = _scope(caller)
    if located is None or (scope is not None and located.tenant_id != scope):
        raise not_found("dead letter", letter_id)
    return store, located


@router.get("")
async def list_route(
    state: State,
    caller: Admin,
    run_id: Annotated[str | None, Query(max_length=300)] = None,
    kind: DeadLetterKind | None = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> DeadLetterPageView:
    """Dead letters newest first, optionally of one run and of one kind."""
    before = None
    if cursor is not None:
        _, before = decode_cursor(cursor)
        if not ENTRY_ID.fullmatch(before):
            raise ApiError(422, f"cursor: expected a next_cursor value returned by this API, got {cursor[:40]!r}")
    store = DeadLetterStore(state.redis, state.keys, state.pool)
    page = await store.page(tenant_id=_scope(caller), run_id=run_id, kind=kind, before=before, limit=limit)
    next_cursor = None
    if page.next_before is not None:
        next_cursor = encode_cursor(_at(float(page.next_before.split("-", 1)[0])), page.next_before)
    return DeadLetterPageView(items=[_view(item) for item in page.items], next_cursor=next_cursor)


@router.get("/{letter_id}")
async def show_route(letter_id: str, state: State, caller: Admin) -> DeadLetterView:
    """One dead letter; 404 when it is not parked (any more) or belongs to another tenant's run."""
    _, located = await _find(state, caller, letter_id)
    return _view(located)


@router.post("/{letter_id}/replay")
async def replay_route(letter_id: str, state: State, caller: Admin) -> ReplayView:
    """Send the parked message back to be consumed again and remove the dead letter; 409 says why it cannot go."""
    store, located = await _find(state, caller, letter_id)
    letter = located.letter
    detail = {"kind": letter.kind, "reason": letter.reason, "run_id": letter.run_id, "token_id": letter.token_id}
    tenant_id = located.tenant_id or caller.tenant_id
    try:
        async with audited(state, caller, "dead_letter.replay", letter_id, tenant_id=tenant_id, detail=detail) as out:
            replayed = await store.replay(letter)
            out.update(target=replayed.target, entry_id=replayed.entry_id)
    except ReplayRefused as exc:
        if exc.code == "missing":
            raise not_found("dead letter", letter_id) from None
        raise ApiError(409, exc.message, code=exc.code, details={"id": letter_id, "run_id": letter.run_id}) from None
    return ReplayView(id=letter_id, kind=letter.kind, target=replayed.target, entry_id=replayed.entry_id)


@router.delete("/{letter_id}", status_code=204)
async def discard_route(letter_id: str, state: State, caller: Admin) -> Response:
    """Remove the dead letter without sending its message anywhere."""
    store, located = await _find(state, caller, letter_id)
    letter = located.letter
    detail = {"kind": letter.kind, "reason": letter.reason, "run_id": letter.run_id, "payload": letter.payload}
    tenant_id = located.tenant_id or caller.tenant_id
    async with audited(state, caller, "dead_letter.discard", letter_id, tenant_id=tenant_id, detail=detail):
        if not await store.discard(letter_id):
            raise not_found("dead letter", letter_id)
    return Response(status_code=204)
