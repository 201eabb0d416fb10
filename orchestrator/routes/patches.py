"""Runtime patches of a running run: JSON Patch ops against its current definition, and their history."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from fastapi import APIRouter

from common.auth import Principal
from common.errors import ValidationFailed
from common.roles import Permission
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.patch import PatchOutcome, patch_run
from common.runs.patch_intents import confirm_intent, patch_lock, settle_intents, write_intent
from common.runs.patch_policy import check_agent_patch, nodes_added_by, weakened_gates
from common.workflow.definition import WorkflowDefinition
from orchestrator._audit import audited
from orchestrator._errors import ApiError
from orchestrator._jsonpatch import apply_ops
from orchestrator._models import RunPatch
from orchestrator._run_view import find_run
from orchestrator._schemas.patches import PatchPageAnswer, PatchResultAnswer
from orchestrator._state import AppState, Editor, Reader, State
from orchestrator._workflows import compile_for

router = APIRouter(prefix="/api/v1", tags=["patches"])


def _ended(run_id: str, status: str | None) -> ApiError:
    return ApiError(
        409,
        f"run {run_id} has ended ({status or 'live state expired'}); only running runs can be patched",
        code="run_ended",
    )


def _refusal(run_id: str, current: int, outcome: PatchOutcome) -> ApiError:
    if outcome.status in ("ended", "missing"):
        return _ended(run_id, outcome.status)
    if outcome.status == "refused":
        return ApiError(409, "; ".join(outcome.refusals), code="node_started", details=outcome.refusals)
    return ApiError(
        409,
        f"run {run_id} changed while patching (IR version {current} is no longer current); retry",
        code="version_conflict",
        details={"expected_version": current, "actual_version": outcome.ir_version},
    )


async def _check_agent(
    conn: asyncpg.Connection,
    caller: Principal,
    run_id: str,
    ops: list[dict[str, Any]],
    definition: dict[str, Any],
    author: str,
) -> None:
    """403 unless an agent's patch only appends what its node allows, downstream of itself."""
    if caller.grant is None:
        return
    added_before = await nodes_added_by(conn, run_id, author)
    refusals = check_agent_patch(ops, definition, caller.grant, added_before)
    if refusals:
        raise ApiError(
            403, "; ".join(map(str, refusals)), code="patch_forbidden", details=[r.as_json() for r in refusals]
        )


def _check_gates(caller: Principal, weakened: list[str]) -> None:
    if weakened and not caller.may(Permission.ADMIN):
        raise ApiError(
            403,
            f"only an admin may weaken a running run's approval gates: {'; '.join(weakened)}",
            code="gate_protected",
            details=weakened,
        )


@contextlib.asynccontextmanager
async def _patch_locked(state: AppState, run_id: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection holding the run's patch lock for the block.

    The API's pool does not reset sessions on release, so a connection whose lock may outlive the block (the block
    failed: the unlock may not have run, or the lock was granted as a cancellation arrived) is closed, and its
    session's locks go with it.
    """
    async with state.pool.acquire() as conn:
        try:
            async with patch_lock(conn, run_id):
                yield conn
        except BaseException:
            conn.terminate()
            raise


@router.post("/runs/{run_id}/patch")
async def patch(run_id: str, body: RunPatch, state: State, caller: Editor) -> PatchResultAnswer:
    """Apply ``ops`` to the run's current definition and swap its IR; returns the new IR version.

    Agents may only append nodes downstream of themselves; only admins may weaken an approval gate (audited).
    """
    await find_run(state, caller.tenant_id, run_id)
    author = f"key:{caller.key_id}"
    # One patch of a run at a time (the lock is the connection's, so a crash releases it), and no row lock held
    # while Redis swaps: the intent is committed first, the swap decides, the confirmation follows.
    async with _patch_locked(state, run_id) as conn:
        async with conn.transaction():
            await settle_intents(conn, state.redis, state.keys, run_id)
            row = await conn.fetchrow(
                "SELECT workflow_name, definition, definition_version FROM runs WHERE id = $1", run_id
            )
        status = await state.redis.hget(state.keys.run(run_id), "status")
        if status is None or status in TERMINAL_RUN_STATUSES:
            raise _ended(run_id, status)
        current = int(row["definition_version"])
        ops = [op.as_json() for op in body.ops]
        await _check_agent(conn, caller, run_id, ops, row["definition"], author)
        patched = apply_ops(row["definition"], body.ops, max_bytes=state.settings.max_definition_bytes)
        if not isinstance(patched, dict):
            raise ValidationFailed([f"definition: expected an object after the patch, got {type(patched).__name__}"])
        result = compile_for(state, patched, row["workflow_name"], current + 1)
        weakened = weakened_gates(WorkflowDefinition.model_validate(row["definition"]), result.definition)
        _check_gates(caller, weakened)
        detail = {"weakened": weakened, "ops": ops, "from_version": current}
        async with contextlib.AsyncExitStack() as stack:
            if weakened:
                # Committed only if the swap happens: an audit row never claims a change that did not take.
                await stack.enter_async_context(
                    audited(state, caller, "run.gate_weakened", run_id, tenant_id=caller.tenant_id, detail=detail)
                )
            intent = await write_intent(conn, run_id, current, result.definition.to_json(), ops, author, body.reason)
            outcome = await patch_run(
                state.scripts,
                run_id,
                result.ir,
                expected_version=current,
                author=author,
                reason=body.reason,
                max_agents=state.settings.max_agents,
            )
            if outcome.status != "ok" or outcome.ir_version is None:
                await conn.execute("UPDATE patches SET state = 'abandoned' WHERE id = $1", intent)
                raise _refusal(run_id, current, outcome)
            new_version = outcome.ir_version
            async with conn.transaction():
                await confirm_intent(conn, intent, run_id, new_version)
    return {
        "run_id": run_id,
        "from_version": current,
        "ir_version": new_version,
        "added_nodes": outcome.added_nodes,
        "added_edges": outcome.added_edges,
        "warnings": result.warnings,
    }


@router.get("/runs/{run_id}/patches")
async def list_patches(run_id: str, state: State, caller: Reader) -> PatchPageAnswer:
    """Every patch applied to the run, oldest first."""
    await find_run(state, caller.tenant_id, run_id)
    rows = await state.pool.fetch(
        "SELECT id, from_version, to_version, ops, author, reason, created_at FROM patches"
        " WHERE run_id = $1 AND state = 'applied' ORDER BY to_version",
        run_id,
    )
    items = [dict(r) | {"created_at": r["created_at"].isoformat()} for r in rows]
    return {"items": items, "next_cursor": None}
