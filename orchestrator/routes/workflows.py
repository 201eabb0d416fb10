"""Workflows: create, list, read, new versions (full or JSON Patch), archive; every ``{ref}`` is an id or name."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Query, Response

from common.errors import ValidationFailed
from common.workflow.compiler import CompileResult
from common.workflow.references import check_workflow_references
from orchestrator._errors import not_found
from orchestrator._jsonpatch import apply_ops
from orchestrator._models import WorkflowCreate, WorkflowPatch, WorkflowUpdate
from orchestrator._pagination import MAX_LIMIT, decode_cursor, encode_cursor
from orchestrator._schemas.workflows import (
    WorkflowAnswer,
    WorkflowCreatedAnswer,
    WorkflowPageAnswer,
    WorkflowSavedAnswer,
    WorkflowVersionAnswer,
    WorkflowVersionPageAnswer,
)
from orchestrator._state import Editor, Reader, State
from orchestrator._workflows import (
    compile_off_loop,
    find_workflow,
    load_version,
    save_version,
    unique_violation,
    version_json,
    workflow_json,
    workflow_row_json,
    workflows_changed,
)

router = APIRouter(prefix="/api/v1", tags=["workflows"])
# A new definition answers 201 when it made a version, 200 when it equalled the latest.
_NEW_VERSION: dict[int | str, dict[str, Any]] = {201: {"model": WorkflowSavedAnswer, "description": "a new version"}}


async def _refuse_self_inclusion(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, name: str, result: CompileResult
) -> None:
    """422 when the definition would run itself through workflow, loop or map nodes (``cycle: a -> b -> a``)."""
    errors = await check_workflow_references(db, tenant_id, name, result.definition.to_json())
    if errors:
        raise ValidationFailed(errors)


@router.post("/workflows", status_code=201)
async def create_workflow(body: WorkflowCreate, state: State, caller: Editor) -> WorkflowCreatedAnswer:
    """Create a workflow at version 1; 409 when the tenant already has one of that name."""
    result = await compile_off_loop(state, body.definition, body.name)
    await _refuse_self_inclusion(state.pool, caller.tenant_id, body.name, result)
    async with state.pool.acquire() as conn, conn.transaction():
        try:
            row = await conn.fetchrow(
                "INSERT INTO workflows (tenant_id, name, description) VALUES ($1, $2, $3)"
                " RETURNING id, name, latest_version",
                caller.tenant_id,
                body.name,
                body.description,
            )
        except asyncpg.UniqueViolationError:
            raise unique_violation(body.name) from None
        await save_version(conn, row, result, caller.key_id, None)
        workflow = await workflow_json(conn, caller.tenant_id, row["id"])
    await workflows_changed(state, caller.tenant_id)
    return workflow | {"warnings": result.warnings}


@router.get("/workflows")
async def list_workflows(
    state: State,
    caller: Reader,
    name: str | None = Query(default=None, max_length=200, description="exact name, or a prefix ending in '*'"),
    limit: int = Query(default=50, ge=1, le=MAX_LIMIT),
    cursor: str | None = Query(default=None, max_length=500),
) -> WorkflowPageAnswer:
    """The tenant's live workflows, newest first, ``limit`` at a time."""
    conditions = ["w.tenant_id = $1", "w.archived_at IS NULL"]
    args: list[Any] = [caller.tenant_id]
    if name is not None:
        if name.endswith("*"):
            args.append(name[:-1].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%")
            conditions.append(f"w.name LIKE ${len(args)}")
        else:
            args.append(name)
            conditions.append(f"w.name = ${len(args)}")
    if cursor is not None:
        created_at, last_id = decode_cursor(cursor)
        args += [created_at, last_id]
        conditions.append(f"(w.created_at, w.id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await state.pool.fetch(
        "SELECT w.id, w.name, w.description, w.latest_version, w.archived_at, w.created_at, w.updated_at,"
        " v.definition, v.content_hash FROM workflows w"
        " JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version"
        f" WHERE {' AND '.join(conditions)} ORDER BY w.created_at DESC, w.id DESC LIMIT ${len(args)}",
        *args,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["created_at"], rows[-1]["id"]) if more else None
    return {"items": [workflow_row_json(r) for r in rows], "next_cursor": next_cursor}


@router.get("/workflows/{ref:path}/versions/{version}")
async def get_version(ref: str, version: int, state: State, caller: Reader) -> WorkflowVersionAnswer:
    """One immutable version of a workflow."""
    workflow = await find_workflow(state.pool, caller.tenant_id, ref)
    return version_json(await load_version(state.pool, workflow["id"], version))


@router.get("/workflows/{ref:path}/versions")
async def list_versions(ref: str, state: State, caller: Reader) -> WorkflowVersionPageAnswer:
    """Every version of a workflow, newest first (definitions are fetched one by one)."""
    workflow = await find_workflow(state.pool, caller.tenant_id, ref)
    rows = await state.pool.fetch(
        "SELECT workflow_id, version, content_hash, created_at, created_by FROM workflow_versions"
        " WHERE workflow_id = $1 ORDER BY version DESC",
        workflow["id"],
    )
    return {"items": [version_json(r, with_definition=False) for r in rows], "next_cursor": None}


@router.get("/workflows/{ref:path}")
async def get_workflow(ref: str, state: State, caller: Reader) -> WorkflowAnswer:
    """A workflow with its latest version."""
    workflow = await find_workflow(state.pool, caller.tenant_id, ref)
    return await workflow_json(state.pool, caller.tenant_id, workflow["id"])


@router.put("/workflows/{ref:path}", responses=_NEW_VERSION)
async def update_workflow(
    ref: str, body: WorkflowUpdate, state: State, caller: Editor, response: Response
) -> WorkflowSavedAnswer:
    """Save ``definition`` as a new version (201), or nothing when its content is unchanged (200)."""
    async with state.pool.acquire() as conn, conn.transaction():
        workflow = await find_workflow(conn, caller.tenant_id, ref, for_update=True)
        result = await compile_off_loop(state, body.definition, workflow["name"])
        await _refuse_self_inclusion(conn, caller.tenant_id, workflow["name"], result)
        _, created = await save_version(conn, workflow, result, caller.key_id, body.description)
        body_json = await workflow_json(conn, caller.tenant_id, workflow["id"])
    if created:
        await workflows_changed(state, caller.tenant_id)
    response.status_code = 201 if created else 200
    return body_json | {"warnings": result.warnings, "created": created}


@router.patch("/workflows/{ref:path}", responses=_NEW_VERSION)
async def patch_workflow(
    ref: str, body: WorkflowPatch, state: State, caller: Editor, response: Response
) -> WorkflowSavedAnswer:
    """Apply JSON Patch ops to the latest definition and save the result as a new version."""
    async with state.pool.acquire() as conn, conn.transaction():
        workflow = await find_workflow(conn, caller.tenant_id, ref, for_update=True)
        latest = await load_version(conn, workflow["id"], workflow["latest_version"])
        patched = apply_ops(latest["definition"], body.ops, max_bytes=state.settings.max_definition_bytes)
        if not isinstance(patched, dict):
            raise ValidationFailed([f"definition: expected an object after the patch, got {type(patched).__name__}"])
        result = await compile_off_loop(state, patched, workflow["name"])
        await _refuse_self_inclusion(conn, caller.tenant_id, workflow["name"], result)
        _, created = await save_version(conn, workflow, result, caller.key_id, body.description)
        body_json = await workflow_json(conn, caller.tenant_id, workflow["id"])
    if created:
        await workflows_changed(state, caller.tenant_id)
    response.status_code = 201 if created else 200
    return body_json | {"warnings": result.warnings, "created": created}


@router.delete("/workflows/{ref:path}", status_code=204)
async def archive_workflow(ref: str, state: State, caller: Editor) -> Response:
    """Archive a workflow: it leaves lists and cannot start runs; its runs stay readable."""
    workflow = await find_workflow(state.pool, caller.tenant_id, ref)
    done = await state.pool.execute(
        "UPDATE workflows SET archived_at = now(), updated_at = now() WHERE id = $1 AND archived_at IS NULL",
        workflow["id"],
    )
    if done == "UPDATE 0":
        raise not_found("workflow", ref)
    await workflows_changed(state, caller.tenant_id)
    return Response(status_code=204)
