"""Runs: submit (idempotent), list, read, current definition, cancel, resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from common.errors import AobError
from common.roles import Permission
from common.runs.approvals import cancel_approvals
from common.runs.cancel import cancel_run
from common.runs.children import list_child_runs
from common.runs.resume import resume_run
from orchestrator._errors import ApiError
from orchestrator._json import OrjsonResponse
from orchestrator._json_body import read_json, validated
from orchestrator._models import RunCreate, RunResume
from orchestrator._pagination import MAX_LIMIT, decode_cursor, encode_cursor
from orchestrator._run_view import RUN_COLUMNS, find_run, run_json, summary_json
from orchestrator._schemas.document import COMPONENT_REFS
from orchestrator._schemas.runs import (
    ResumedRunAnswer,
    RunAnswer,
    RunDefinitionAnswer,
    RunDetailAnswer,
    RunPageAnswer,
)
from orchestrator._state import AppState, Editor, Reader, State, permitted, principal_counted_later
from orchestrator._submit import submit_run

router = APIRouter(prefix="/api/v1", tags=["runs"])

RUN_STATUSES = ("queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out")


# The route takes only the request (see orchestrator._json_body); its documentation says what it reads (RunCreate is a
# component that create_app adds).
_SUBMIT_OPENAPI: dict[str, Any] = {
    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string"}}],
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": COMPONENT_REFS + "RunCreate"}}},
    },
}


@router.post(
    "/runs",
    status_code=201,
    response_model=RunAnswer,
    responses={200: {"model": RunAnswer, "description": "an idempotent replay: the run this key started"}},
    openapi_extra=_SUBMIT_OPENAPI,
)
async def create_run(request: Request) -> Response:
    """Start a run (201); the same ``Idempotency-Key`` and body again gives the same run (200)."""
    body = await read_json(request)
    state: AppState = request.app.state.aob
    caller, count = await principal_counted_later(request, state)
    permitted(caller, Permission.WRITE)
    submitted = await submit_run(
        state, caller, validated(RunCreate, body), request.headers.get("idempotency-key"), count
    )
    if count.verdict is not None:
        request.state.rate_headers = count.verdict.headers()
    # Returned as a response, so FastAPI does not validate again the dict this route just built.
    return OrjsonResponse(submitted.body, status_code=201 if submitted.created else 200)


@router.get("/runs")
async def list_runs(
    state: State,
    caller: Reader,
    workflow: str | None = Query(default=None, max_length=300, description="workflow id or name"),
    status: str | None = Query(default=None, pattern="^(" + "|".join(RUN_STATUSES) + ")$"),
    top_level: bool = Query(default=False, description="only runs that no other run started"),
    limit: int = Query(default=50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=500),
) -> RunPageAnswer:
    """The tenant's runs, newest first (as last recorded in Postgres)."""
    conditions = ["tenant_id = $1"]
    args: list[Any] = [caller.tenant_id]
    if workflow is not None:
        args.append(workflow)
        conditions.append(f"(workflow_id = ${len(args)} OR workflow_name = ${len(args)})")
    if status is not None:
        args.append(status)
        conditions.append(f"status = ${len(args)}")
    if top_level:
        conditions.append("parent_run_id IS NULL")
    if cursor is not None:
        created_at, last_id = decode_cursor(cursor)
        args += [created_at, last_id]
        conditions.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await state.pool.fetch(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE {' AND '.join(conditions)}"
        f" ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
        *args,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return {"items": [summary_json(r) for r in rows], "next_cursor": next_cursor}


@router.get("/runs/{run_id}")
async def get_run(run_id: str, state: State, caller: Reader) -> RunDetailAnswer:
    """A run with per-node state, outputs (or their CAS refs), metrics and the child runs its nodes started."""
    body = await run_json(state, await find_run(state, caller.tenant_id, run_id))
    children = await list_child_runs(state.pool, state.redis, state.keys, caller.tenant_id, run_id)
    return body | {"children": children}


@router.get("/runs/{run_id}/definition")
async def get_run_definition(run_id: str, state: State, caller: Reader) -> RunDefinitionAnswer:
    """The run's current definition, with every patch applied so far."""
    await find_run(state, caller.tenant_id, run_id)
    row = await state.pool.fetchrow("SELECT definition, definition_version FROM runs WHERE id = $1", run_id)
    return {"run_id": run_id, "ir_version": row["definition_version"], "definition": row["definition"]}


@router.post("/runs/{run_id}/cancel")
async def cancel(run_id: str, state: State, caller: Editor) -> RunAnswer:
    """Cancel a run that has not ended; 409 when it has."""
    row = await find_run(state, caller.tenant_id, run_id)
    verdict = await cancel_run(state.scripts, run_id, reason=f"cancelled by {caller.name}")
    if verdict != "ok":
        raise ApiError(409, f"run {run_id} has already ended; nothing to cancel", code="run_ended")
    # Descendants' approvals are cancelled by the hitl worker's sweeper, which cancels those of ended runs.
    await cancel_approvals(state.pool, state.redis, state.keys, run_id)
    return await run_json(state, row)


@router.post("/runs/{run_id}/resume")
async def resume(
    run_id: str, state: State, caller: Editor, body: Annotated[RunResume | None, Body()] = None
) -> ResumedRunAnswer:
    """Run a failed, cancelled or timed-out run again from where it stopped (or from ``from_node``)."""
    row = await find_run(state, caller.tenant_id, run_id)
    from_node = body.from_node if body is not None else None
    if from_node is None:
        status = await state.redis.hget(state.keys.run(run_id), "status")
        if status == "succeeded":
            raise ApiError(409, f"run {run_id} succeeded; give from_node to replay from a node", code="run_succeeded")
    try:
        outcome = await resume_run(state.scripts, run_id, from_node=from_node, max_agents=state.settings.max_agents)
    except AobError as exc:
        raise ApiError(422, exc.message, details=[exc.message]) from exc
    if outcome.status == "not_ended":
        raise ApiError(409, f"run {run_id} has not ended; only ended runs resume", code="run_not_ended")
    if outcome.status == "missing":
        raise ApiError(409, f"run {run_id}: its live state has expired; it cannot resume", code="run_expired")
    if outcome.status != "ok":
        raise ApiError(409, f"run {run_id} changed while resuming ({outcome.status}); retry", code="conflict")
    return await run_json(state, row) | {"resumed_nodes": outcome.nodes}
