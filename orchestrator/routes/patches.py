"""Runtime patches of a running run: JSON Patch ops against its current definition, and their history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from common.errors import ValidationFailed
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.patch import patch_run
from orchestrator._errors import ApiError
from orchestrator._jsonpatch import apply_ops
from orchestrator._models import RunPatch
from orchestrator._run_view import find_run
from orchestrator._state import Caller, State
from orchestrator._workflows import compile_for

router = APIRouter(prefix="/api/v1", tags=["patches"])


def _ended(run_id: str, status: str | None) -> ApiError:
    return ApiError(
        409,
        f"run {run_id} has ended ({status or 'live state expired'}); only running runs can be patched",
        code="run_ended",
    )


@router.post("/runs/{run_id}/patch")
async def patch(run_id: str, body: RunPatch, state: State, caller: Caller) -> dict[str, Any]:
    """Apply ``ops`` to the run's current definition and swap its IR; returns the new IR version."""
    await find_run(state, caller.tenant_id, run_id)
    author = f"key:{caller.key_id}"
    # The row lock serialises patches of one run: concurrent ones apply one after the other on the latest version.
    async with state.pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT workflow_name, definition, definition_version FROM runs WHERE id = $1 FOR UPDATE", run_id
        )
        status = await state.redis.hget(state.keys.run(run_id), "status")
        if status is None or status in TERMINAL_RUN_STATUSES:
            raise _ended(run_id, status)
        current = int(row["definition_version"])
        patched = apply_ops(row["definition"], body.ops)
        if not isinstance(patched, dict):
            raise ValidationFailed([f"definition: expected an object after the patch, got {type(patched).__name__}"])
        result = compile_for(state, patched, row["workflow_name"], current + 1)
        outcome = await patch_run(
            state.scripts,
            run_id,
            result.ir,
            expected_version=current,
            author=author,
            reason=body.reason,
            max_agents=state.settings.max_agents,
        )
        if outcome.status in ("ended", "missing"):
            raise _ended(run_id, outcome.status)
        if outcome.status == "refused":
            raise ApiError(409, "; ".join(outcome.refusals), code="node_started", details=outcome.refusals)
        if outcome.status != "ok" or outcome.ir_version is None:
            raise ApiError(
                409,
                f"run {run_id} changed while patching (IR version {current} is no longer current); retry",
                code="version_conflict",
                details={"expected_version": current, "actual_version": outcome.ir_version},
            )
        new_version = outcome.ir_version
        await conn.execute(
            "UPDATE runs SET definition = $2, definition_version = $3 WHERE id = $1",
            run_id,
            result.definition.to_json(),
            new_version,
        )
        await conn.execute(
            "INSERT INTO patches (run_id, from_version, to_version, ops, author, reason)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            run_id,
            current,
            new_version,
            [op.as_json() for op in body.ops],
            author,
            body.reason,
        )
    return {
        "run_id": run_id,
        "from_version": current,
        "ir_version": new_version,
        "added_nodes": outcome.added_nodes,
        "added_edges": outcome.added_edges,
        "warnings": result.warnings,
    }


@router.get("/runs/{run_id}/patches")
async def list_patches(run_id: str, state: State, caller: Caller) -> dict[str, Any]:
    """Every patch applied to the run, oldest first."""
    await find_run(state, caller.tenant_id, run_id)
    rows = await state.pool.fetch(
        "SELECT id, from_version, to_version, ops, author, reason, created_at FROM patches"
        " WHERE run_id = $1 ORDER BY to_version",
        run_id,
    )
    items = [dict(r) | {"created_at": r["created_at"].isoformat()} for r in rows]
    return {"items": items, "next_cursor": None}
