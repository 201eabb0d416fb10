"""Runs: submit (idempotent), list, read, current definition, cancel, resume."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response

from common.errors import AobError
from common.roles import Permission
from common.runs.approvals import cancel_approvals
from common.runs.cancel import cancel_run
from common.runs.children import list_child_runs
from common.runs.resume import InvalidInputs, resume_run
from common.workflow.ir import IR
from orchestrator._errors import ApiError
from orchestrator._json import OrjsonResponse
from orchestrator._json_body import read_json, validated
from orchestrator._models import RunCreate, RunResume
from orchestrator._pagination import MAX_LIMIT, decode_cursor, encode_cursor
from orchestrator._run_filters import RunFilters
from orchestrator._run_view import RUN_COLUMNS, find_run, ir_definition, run_json, summary_json
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
    filters: Annotated[RunFilters, Query()],
    limit: int = Query(default=50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=500),
) -> RunPageAnswer:
    """The tenant's runs, newest first (as last recorded in Postgres), narrowed by ``filters``."""
    conditions, args = filters.where(caller.tenant_id)
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
    """The run's current definition, with every patch applied so far (a child run's is drawn from its IR)."""
    await find_run(state, caller.tenant_id, run_id)
    row = await state.pool.fetchrow("SELECT definition, definition_version, ir FROM runs WHERE id = $1", run_id)
    definition = row["definition"]
    if definition is None:
        # A child run records only the IR it started with (the hot one is current, patches included).
        hot = await state.redis.get(state.keys.ir(run_id))
        if hot is not None:
            definition = ir_definition(IR.model_validate_json(hot))
        elif row["ir"] is not None:
            definition = ir_definition(IR.model_validate(row["ir"]))
    return {"run_id": run_id, "ir_version": row["definition_version"], "definition": definition}


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
    """Run a failed, cancelled or timed-out run again from where it stopped (or from ``from_node``), with its
    inputs replaced by ``inputs`` when given."""
    row = await find_run(state, caller.tenant_id, run_id)
    body = body or RunResume()
    if body.from_node is None:
        status = await state.redis.hget(state.keys.run(run_id), "status")
        if status == "succeeded":
            raise ApiError(409, f"run {run_id} succeeded; give from_node to replay from a node", code="run_succeeded")
    try:
        outcome = await resume_run(
            state.scripts,
            run_id,
            from_node=body.from_node,
            inputs=body.inputs,
            max_agents=state.settings.max_agents,
        )
    except InvalidInputs as exc:
        raise ApiError(422, exc.message, code=exc.code, details=exc.details or [exc.message]) from exc
    except AobError as exc:
        raise ApiError(422, exc.message, details=[exc.message]) from exc
    if outcome.status == "not_ended":
        raise ApiError(409, f"run {run_id} has not ended; only ended runs resume", code="run_not_ended")
    if outcome.status == "missing":
        raise ApiError(409, f"run {run_id}: its live state has expired; it cannot resume", code="run_expired")
    if outcome.status != "ok":
        raise ApiError(409, f"run {run_id} changed while resuming ({outcome.status}); retry", code="conflict")
    return await run_json(state, row) | {"resumed_nodes": outcome.nodes}
