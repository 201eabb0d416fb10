"""Workflows and their immutable versions as the API serves them: 404s, compiling under its limits, JSON shapes."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import asyncpg

from common.workflow import store
from common.workflow.child_run_limits import ChildRunLimits, check_child_run_limits
from common.workflow.compiler import CompileResult, compile_definition, definition_hash
from common.workflow.limits import DefinitionLimits, DefinitionTooLarge
from orchestrator._errors import ApiError, not_found
from orchestrator._state import AppState, CompiledVersion
from orchestrator._workflow_cache import LiveWorkflow, publish_workflow_change


async def find_workflow(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, ref: str, *, for_update: bool = False
) -> asyncpg.Record:
    """The tenant's live workflow whose id or name is ``ref`` (an id wins); 404 otherwise."""
    row = await store.find_workflow(db, tenant_id, ref, for_update=for_update)
    if row is None:
        raise not_found("workflow", ref)
    return row


async def load_version(db: asyncpg.Pool | asyncpg.Connection, workflow_id: str, version: int) -> asyncpg.Record:
    """One stored version of a workflow; 404 when it has no such version."""
    row = await store.load_version(db, workflow_id, version)
    if row is None:
        raise not_found("workflow version", f"{workflow_id}@{version}")
    return row


def compile_for(state: AppState, definition: Any, name: str, version: int = 1) -> CompileResult:
    """Validate and compile ``definition`` under the API's size, agent and child-run limits: 413 naming each size
    limit it goes over, ``ValidationFailed`` (422) for anything else."""
    try:
        result = compile_definition(
            definition,
            max_agents=state.settings.max_agents,
            version=version,
            name=name,
            limits=DefinitionLimits.of(state.settings),
        )
    except DefinitionTooLarge as exc:
        details = [{"path": e.where, "setting": e.setting, "value": e.value, "limit": e.limit} for e in exc.exceeded]
        message = f"definition too large: {exc.message}"
        raise ApiError(413, message, code="definition_too_large", details=details) from None
    check_child_run_limits(result.definition.to_json(), ChildRunLimits.of(state.settings))
    return result


async def compile_off_loop(state: AppState, definition: Any, name: str, version: int = 1) -> CompileResult:
    """``compile_for`` in a worker thread: a large definition's templates take a while to compile, and the
    event loop keeps serving other requests meanwhile."""
    return await asyncio.to_thread(compile_for, state, definition, name, version)


async def live_workflow(state: AppState, tenant_id: str, ref: str, *, fresh: bool = False) -> LiveWorkflow:
    """The tenant's live workflow ``ref`` (id or name), from this process's cache unless ``fresh``; 404 otherwise."""

    async def lookup() -> LiveWorkflow:
        row = await find_workflow(state.pool, tenant_id, ref)
        return LiveWorkflow(str(row["id"]), row["name"], int(row["latest_version"]))

    if fresh:
        return await lookup()
    # ``lookup`` returns a workflow or raises, so the cache never answers None here.
    return cast(LiveWorkflow, await state.workflows.load((tenant_id, ref), lookup))


async def workflows_changed(state: AppState, tenant_id: str) -> None:
    """Drop the tenant's cached workflows here at once, and in every other API process through Redis."""
    state.workflows.forget_tenant(tenant_id)
    await publish_workflow_change(state.redis, state.keys, tenant_id)


async def compiled_version(state: AppState, workflow: LiveWorkflow, version: int) -> CompiledVersion:
    """The compiled form of a stored version, from the cache when seen before (versions never change)."""
    key = (workflow.id, version)
    cached = state.compiled.get(key)
    if cached is not None:
        return cached
    row = await load_version(state.pool, workflow.id, version)
    # A stored version was checked against the limits in force when it was saved: only compile it.
    result = await asyncio.to_thread(
        compile_definition, row["definition"], max_agents=state.settings.max_agents, name=workflow.name
    )
    compiled = CompiledVersion(result, json.dumps(result.definition.to_json()))
    state.remember_compiled(key, compiled)
    return compiled


async def save_version(
    conn: asyncpg.Connection, workflow: asyncpg.Record, result: CompileResult, author: str, description: str | None
) -> tuple[int, bool]:
    """Store ``result`` as the next version unless it equals the latest; returns (version, created).

    ``workflow`` must have been read ``FOR UPDATE`` in the same transaction, so versions never collide.
    """
    content_hash = definition_hash(result.definition)
    latest = int(workflow["latest_version"])
    latest_hash = await conn.fetchval(
        "SELECT content_hash FROM workflow_versions WHERE workflow_id = $1 AND version = $2", workflow["id"], latest
    )
    if latest_hash == content_hash:
        if description is not None:
            await conn.execute(
                "UPDATE workflows SET description = $2, updated_at = now() WHERE id = $1", workflow["id"], description
            )
        return latest, False
    version = latest + 1
    await conn.execute(
        "INSERT INTO workflow_versions (workflow_id, version, definition, content_hash, created_by)"
        " VALUES ($1, $2, $3, $4, $5)",
        workflow["id"],
        version,
        result.definition.to_json(),
        content_hash,
        author,
    )
    await conn.execute(
        "UPDATE workflows SET latest_version = $2, description = COALESCE($3, description), updated_at = now()"
        " WHERE id = $1",
        workflow["id"],
        version,
        description,
    )
    return version, True


async def workflow_json(db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, workflow_id: str) -> dict[str, Any]:
    """The workflow resource with its latest definition."""
    row = await db.fetchrow(
        f"SELECT {store.WORKFLOW_COLUMNS}, v.definition, v.content_hash FROM workflows w"
        " JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.latest_version"
        " WHERE w.tenant_id = $1 AND w.id = $2",
        tenant_id,
        workflow_id,
    )
    if row is None:
        raise not_found("workflow", workflow_id)
    return workflow_row_json(row)


def workflow_row_json(row: asyncpg.Record) -> dict[str, Any]:
    """A row of workflows joined with its latest version, as the API shows it."""
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "version": row["latest_version"],
        "definition": row["definition"],
        "content_hash": row["content_hash"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
        "archived_at": row["archived_at"].isoformat() if row["archived_at"] else None,
    }


def version_json(row: asyncpg.Record, *, with_definition: bool = True) -> dict[str, Any]:
    """One workflow version as the API shows it."""
    body: dict[str, Any] = {
        "workflow_id": row["workflow_id"],
        "version": row["version"],
        "content_hash": row["content_hash"],
        "created_at": row["created_at"].isoformat(),
        "created_by": row["created_by"],
    }
    if with_definition:
        body["definition"] = row["definition"]
    return body


def unique_violation(name: str) -> ApiError:
    return ApiError(
        409, f"workflow name '{name}' is already taken in this tenant", details={"name": name}, code="name_taken"
    )
