"""Schedules: create, list, read, change and delete the tenant's schedules (editors write, readers read).

Answers show the next fire times, computed from the schedule's own rule; the coordinators fire them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from common.auth import Principal
from common.schedules import EDITABLE, SchedulePatch, ScheduleSpec, ScheduleStore, timing_of
from orchestrator._audit import audited
from orchestrator._errors import ApiError, not_found, validation_details
from orchestrator._pagination import MAX_LIMIT
from orchestrator._run_view import runs_started_by
from orchestrator._schemas.runs import RunPageAnswer
from orchestrator._schemas.schedules import ScheduleAnswer, SchedulePageAnswer
from orchestrator._state import AppState, Editor, Reader, State
from orchestrator._submit import check_inputs
from orchestrator._workflows import compiled_version, live_workflow

router = APIRouter(prefix="/api/v1", tags=["schedules"])

SHOWN_FIRE_TIMES = 5
# Changing any of these moves the next fire time to the first one after the change.
_TIMING_FIELDS = ("cron", "timezone", "interval_s")


@router.post("/schedules", status_code=201)
async def create_schedule(body: ScheduleSpec, state: State, caller: Editor) -> ScheduleAnswer:
    """Create a schedule of a workflow (name or id); its inputs are checked against the version it starts."""
    workflow = await live_workflow(state, caller.tenant_id, body.workflow)
    await _check_inputs(state, caller, workflow.id, body.version, body.inputs)
    detail = {"workflow_id": workflow.id}
    async with audited(state, caller, "schedule.create", workflow.id, tenant_id=caller.tenant_id, detail=detail):
        row = await ScheduleStore(state.pool).create(caller.tenant_id, workflow.id, body, by=caller.key_id)
    return _shown(row)


@router.get("/schedules")
async def list_schedules(
    state: State, caller: Reader, workflow: Annotated[str | None, Query(description="name or id")] = None
) -> SchedulePageAnswer:
    """The tenant's schedules, optionally of one workflow."""
    workflow_id = (await live_workflow(state, caller.tenant_id, workflow)).id if workflow else None
    rows = await ScheduleStore(state.pool).list(caller.tenant_id, workflow_id=workflow_id)
    return {"items": [_shown(row) for row in rows], "next_cursor": None}


@router.get("/schedules/{schedule_id}")
async def get_schedule(schedule_id: str, state: State, caller: Reader) -> ScheduleAnswer:
    """One schedule with its next fire times."""
    row = await ScheduleStore(state.pool).get(caller.tenant_id, schedule_id)
    if row is None:
        raise not_found("schedule", schedule_id)
    return _shown(row)


@router.get("/schedules/{schedule_id}/runs")
async def schedule_runs(
    schedule_id: str,
    state: State,
    caller: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 10,
) -> RunPageAnswer:
    """The schedule's latest runs, newest first."""
    if await ScheduleStore(state.pool).get(caller.tenant_id, schedule_id) is None:
        raise not_found("schedule", schedule_id)
    items = await runs_started_by(state, caller.tenant_id, "schedule_id", schedule_id, limit)
    return {"items": items, "next_cursor": None}


@router.patch("/schedules/{schedule_id}")
async def update_schedule(schedule_id: str, body: SchedulePatch, state: State, caller: Editor) -> ScheduleAnswer:
    """Change a schedule; a new timing or a resume fires from the next fire time after now (no catch-up)."""
    store = ScheduleStore(state.pool)
    current = await store.get(caller.tenant_id, schedule_id)
    if current is None:
        raise not_found("schedule", schedule_id)
    changes = body.model_dump(exclude_unset=True)
    # A new cron replaces the interval and the other way round.
    if changes.get("cron") is not None and "interval_s" not in changes:
        changes["interval_s"] = None
    if changes.get("interval_s") is not None and "cron" not in changes:
        changes["cron"] = None
    merged = {name: current[name] for name in EDITABLE} | changes
    try:
        ScheduleSpec.model_validate(merged | {"workflow": current["workflow_id"]})
    except ValidationError as exc:
        details = validation_details([error | {"loc": ("body", *error["loc"])} for error in exc.errors()])
        message = "; ".join(f"{d['path']}: {d['message']}" for d in details)
        raise ApiError(422, message, code="validation_failed", details=details) from None
    if "inputs" in changes or "version" in changes:
        await _check_inputs(state, caller, current["workflow_id"], merged["version"], merged["inputs"])
    resumed = current["paused"] and not merged["paused"]
    retime = resumed or any(current[name] != merged[name] for name in _TIMING_FIELDS)
    detail = {"changed": sorted(changes)}
    async with audited(state, caller, "schedule.update", schedule_id, tenant_id=caller.tenant_id, detail=detail):
        row = await store.update(caller.tenant_id, schedule_id, changes, retime=retime)
    if row is None:
        raise not_found("schedule", schedule_id)
    return _shown(row)


@router.delete("/schedules/{schedule_id}", status_code=204)
async def delete_schedule(schedule_id: str, state: State, caller: Editor) -> Response:
    """Delete a schedule; runs it started keep its id."""
    async with audited(state, caller, "schedule.delete", schedule_id, tenant_id=caller.tenant_id, detail={}):
        if not await ScheduleStore(state.pool).delete(caller.tenant_id, schedule_id):
            raise not_found("schedule", schedule_id)
    return Response(status_code=204)


async def _check_inputs(
    state: AppState, caller: Principal, workflow_id: str, version: int | None, inputs: dict[str, Any]
) -> None:
    """422 when ``inputs`` break the schema of the version the schedule starts (404 for an unknown version)."""
    workflow = await live_workflow(state, caller.tenant_id, workflow_id)
    compiled = await compiled_version(state, workflow, version or workflow.latest_version)
    check_inputs(compiled.result.ir.inputs_schema, inputs)


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    shown = {name: _json_value(value) for name, value in row.items() if name != "tenant_id"}
    upcoming = [] if row["paused"] else timing_of(row).upcoming(_before(row["next_fire_at"]), SHOWN_FIRE_TIMES)
    shown["next_fire_times"] = [fire.isoformat() for fire in upcoming]
    return shown


def _before(moment: datetime) -> datetime:
    # The stored next fire time is itself the first one shown.
    return datetime.fromtimestamp(moment.timestamp() - 1e-3, moment.tzinfo)


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
