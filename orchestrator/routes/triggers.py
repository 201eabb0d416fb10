"""Webhook triggers: create (the secret is shown once), list, read, change, delete; rotate a secret (the old one
stays valid beside the new) and retire the old ones. Editors write, readers read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import ValidationError

from orchestrator._audit import audited
from orchestrator._errors import ApiError, not_found, validation_details
from orchestrator._pagination import MAX_LIMIT
from orchestrator._run_view import runs_started_by
from orchestrator._schemas.runs import RunPageAnswer
from orchestrator._schemas.triggers import (
    TriggerAnswer,
    TriggerPageAnswer,
    TriggerRetiredAnswer,
    TriggerWithSecretAnswer,
)
from orchestrator._state import AppState, Editor, Reader, State
from orchestrator._triggers import (
    MAX_ACTIVE_SECRETS,
    TRIGGER_COLUMNS,
    Trigger,
    TriggerCreate,
    TriggerUpdate,
    insert_trigger,
    load_trigger,
    new_secret,
    replace_secrets,
    update_trigger,
)
from orchestrator._workflow_cache import LiveWorkflow
from orchestrator._workflows import compiled_version, live_workflow

router = APIRouter(prefix="/api/v1", tags=["triggers"])


@router.post("/triggers", status_code=201)
async def create_trigger(body: TriggerCreate, state: State, caller: Editor) -> TriggerWithSecretAnswer:
    """Create a trigger; the answer holds its secret, which is never shown again."""
    workflow = await live_workflow(state, caller.tenant_id, body.workflow, fresh=True)
    await _check_version(state, workflow, body.version)
    raw, entry = new_secret(body.auth, state.keyring)
    async with audited(state, caller, "trigger.create", body.workflow, tenant_id=caller.tenant_id, detail={}) as out:
        trigger = await insert_trigger(state.pool, caller.tenant_id, workflow.id, body, entry, caller.key_id)
        out["trigger_id"] = trigger.id
    return trigger.shown() | {"secret": raw, "secret_id": entry["id"]}


@router.get("/triggers")
async def list_triggers(
    state: State,
    caller: Reader,
    workflow: str | None = Query(default=None, max_length=300, description="workflow id or name"),
    limit: int = Query(default=100, ge=1, le=MAX_LIMIT),
) -> TriggerPageAnswer:
    """The tenant's triggers, newest first; never their secrets."""
    args: list[Any] = [caller.tenant_id, limit]
    where = "tenant_id = $1"
    if workflow is not None:
        args.append((await live_workflow(state, caller.tenant_id, workflow)).id)
        where += " AND workflow_id = $3"
    rows = await state.pool.fetch(
        f"SELECT {TRIGGER_COLUMNS} FROM triggers WHERE {where} ORDER BY created_at DESC, id DESC LIMIT $2", *args
    )
    return {"items": [Trigger.of(row, caller.tenant_id).shown() for row in rows], "next_cursor": None}


@router.get("/triggers/{trigger_id}")
async def get_trigger(trigger_id: str, state: State, caller: Reader) -> TriggerAnswer:
    """One trigger; never its secrets."""
    return (await load_trigger(state.pool, caller.tenant_id, trigger_id)).shown()


@router.get("/triggers/{trigger_id}/runs")
async def trigger_runs(
    trigger_id: str,
    state: State,
    caller: Reader,
    limit: int = Query(default=10, ge=1, le=MAX_LIMIT),
) -> RunPageAnswer:
    """The trigger's latest runs, newest first."""
    await load_trigger(state.pool, caller.tenant_id, trigger_id)
    items = await runs_started_by(state, caller.tenant_id, "trigger_id", trigger_id, limit)
    return {"items": items, "next_cursor": None}


@router.patch("/triggers/{trigger_id}")
async def change_trigger(trigger_id: str, body: TriggerUpdate, state: State, caller: Editor) -> TriggerAnswer:
    """Change the pinned version, the input mapping, the headers, the rate limit or ``paused``."""
    current = await load_trigger(state.pool, caller.tenant_id, trigger_id)
    try:
        fields = body.merged(current)
    except ValidationError as exc:
        details = validation_details([{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)])
        raise ApiError(422, "; ".join(f"{d['path']}: {d['message']}" for d in details), details=details) from None
    if fields.version is not None:
        workflow = await live_workflow(state, caller.tenant_id, current.workflow_id, fresh=True)
        await _check_version(state, workflow, fields.version)
    return (await update_trigger(state.pool, current, fields)).shown()


@router.delete("/triggers/{trigger_id}", status_code=204)
async def delete_trigger(trigger_id: str, state: State, caller: Editor) -> Response:
    """Delete a trigger: its URL answers 404 from then on; the runs it started stay."""
    async with audited(state, caller, "trigger.delete", trigger_id, tenant_id=caller.tenant_id, detail={}):
        deleted = await state.pool.fetchval(
            "DELETE FROM triggers WHERE id = $1 AND tenant_id = $2 RETURNING id", trigger_id, caller.tenant_id
        )
        if deleted is None:
            raise not_found("trigger", trigger_id)
    return Response(status_code=204)


@router.post("/triggers/{trigger_id}/rotate")
async def rotate_secret(trigger_id: str, state: State, caller: Editor) -> TriggerWithSecretAnswer:
    """Add a new secret (shown once); the older one stays valid until retired, so senders switch without downtime.
    409 when two are already active: retire one first."""
    current = await load_trigger(state.pool, caller.tenant_id, trigger_id)
    raw, entry = new_secret(current.auth, state.keyring)

    def add(secrets: list[dict[str, str]]) -> tuple[list[dict[str, str]], None]:
        if len(secrets) >= MAX_ACTIVE_SECRETS:
            raise ApiError(
                409,
                f"trigger {trigger_id} has {len(secrets)} active secrets already; retire the old one first"
                f" (POST /api/v1/triggers/{trigger_id}/retire)",
                code="too_many_secrets",
            )
        return [*secrets, entry], None

    async with (
        audited(state, caller, "trigger.rotate", trigger_id, tenant_id=caller.tenant_id, detail={}),
        state.pool.acquire() as conn,
    ):
        trigger, _ = await replace_secrets(conn, caller.tenant_id, trigger_id, add)
    return trigger.shown() | {"secret": raw, "secret_id": entry["id"]}


@router.post("/triggers/{trigger_id}/retire")
async def retire_secrets(trigger_id: str, state: State, caller: Editor) -> TriggerRetiredAnswer:
    """Retire every secret but the newest: requests signed with an older one are refused from then on."""

    def keep_newest(secrets: list[dict[str, str]]) -> tuple[list[dict[str, str]], int]:
        return secrets[-1:], len(secrets) - 1

    async with (
        audited(state, caller, "trigger.retire", trigger_id, tenant_id=caller.tenant_id, detail={}) as outcome,
        state.pool.acquire() as conn,
    ):
        trigger, retired = await replace_secrets(conn, caller.tenant_id, trigger_id, keep_newest)
        outcome["retired"] = retired
    return trigger.shown() | {"retired": retired}


async def _check_version(state: AppState, workflow: LiveWorkflow, version: int | None) -> None:
    """404 when ``workflow`` has no stored ``version``."""
    if version is not None:
        await compiled_version(state, workflow, version)
