"""Stored workflows in Postgres: finding one of a tenant by id or name, and reading its versions."""

from __future__ import annotations

from typing import Any

import asyncpg

WORKFLOW_COLUMNS = "w.id, w.name, w.description, w.latest_version, w.archived_at, w.created_at, w.updated_at"


async def find_workflow(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, ref: str, *, for_update: bool = False
) -> asyncpg.Record | None:
    """The tenant's live workflow whose id or name is ``ref`` (an id wins); None when there is none."""
    row: asyncpg.Record | None = await db.fetchrow(
        f"SELECT {WORKFLOW_COLUMNS} FROM workflows w WHERE w.tenant_id = $1 AND (w.id = $2 OR w.name = $2)"
        " AND w.archived_at IS NULL ORDER BY (w.id = $2) DESC LIMIT 1" + (" FOR UPDATE" if for_update else ""),
        tenant_id,
        ref,
    )
    return row


async def load_version(db: asyncpg.Pool | asyncpg.Connection, workflow_id: str, version: int) -> asyncpg.Record | None:
    """One stored version of a workflow (definition, hash, author); None when it has no such version."""
    row: asyncpg.Record | None = await db.fetchrow(
        "SELECT workflow_id, version, definition, content_hash, created_at, created_by"
        " FROM workflow_versions WHERE workflow_id = $1 AND version = $2",
        workflow_id,
        version,
    )
    return row


async def find_stored_workflow(
    db: asyncpg.Pool | asyncpg.Connection, tenant_id: str, ref: str, version: int | None
) -> tuple[asyncpg.Record, dict[str, Any]] | None:
    """The tenant's live workflow ``ref`` (id or name) and the definition of ``version`` (latest when None);
    None when either is missing."""
    workflow = await find_workflow(db, tenant_id, ref)
    if workflow is None:
        return None
    row = await load_version(db, workflow["id"], version or workflow["latest_version"])
    if row is None:
        return None
    return workflow, row["definition"]
