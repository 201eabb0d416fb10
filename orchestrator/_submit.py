"""Submitting a run: idempotency, input validation, rate limits, the ``runs`` row, then the engine's start."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from common.auth import Principal
from common.json_schema import InvalidSchema, instance_errors
from common.runs.start import RunStart, start_run
from common.runs.stranded import start_if_stranded
from orchestrator._errors import ApiError
from orchestrator._models import RunCreate
from orchestrator._run_view import RUN_COLUMNS
from orchestrator._state import AppState
from orchestrator._workflows import compiled_version, find_workflow

_MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True)
class Submitted:
    """The run row, and whether this request created it (False: an idempotent replay)."""

    row: asyncpg.Record
    created: bool


def request_hash(body: RunCreate) -> str:
    """Hash of what was asked, so a reused idempotency key with another body is caught."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_inputs(schema: dict[str, Any] | None, inputs: dict[str, Any]) -> None:
    """422 listing every place ``inputs`` breaks the workflow's inputs schema."""
    if not schema:
        return
    try:
        errors = instance_errors(schema, inputs)
    except InvalidSchema as exc:
        # Compiling refuses such schemas, so only a definition that was stored before these checks lands here.
        message = f"the workflow's inputs schema cannot be used: {exc.message}"
        raise ApiError(422, message, code="invalid_schema") from None
    if errors:
        details = [{"path": error.at("inputs"), "message": error.message} for error in errors]
        message = "; ".join(f"{d['path']}: {d['message']}" for d in details)
        raise ApiError(422, message, code="invalid_inputs", details=details)


async def _replay(state: AppState, tenant_id: str, key: str, digest: str) -> Submitted | None:
    row: asyncpg.Record | None = await state.pool.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND idempotency_key = $2", tenant_id, key
    )
    if row is None:
        return None
    if row["request_hash"] != digest:
        raise ApiError(
            409,
            f"Idempotency-Key '{key}' was used for another request body (run {row['id']})",
            code="idempotency_conflict",
            details={"run_id": row["id"]},
        )
    if row["status"] == "queued":
        # The first request may have died between the insert and the start: the retry finishes its work.
        stored = await state.pool.fetchrow("SELECT definition FROM runs WHERE id = $1", row["id"])
        await start_if_stranded(state.scripts, dict(row) | dict(stored), max_agents=state.settings.max_agents)
    return Submitted(row, created=False)


async def submit_run(state: AppState, caller: Principal, body: RunCreate, idempotency_key: str | None) -> Submitted:
    """Create and start a run, or return the one this idempotency key already made."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= _MAX_IDEMPOTENCY_KEY:
        length = len(idempotency_key)
        raise ApiError(422, f"Idempotency-Key: expected 1-{_MAX_IDEMPOTENCY_KEY} characters, got {length}")
    digest = request_hash(body)
    if idempotency_key is not None:
        replay = await _replay(state, caller.tenant_id, idempotency_key, digest)
        if replay is not None:
            return replay
    workflow = await find_workflow(state.pool, caller.tenant_id, body.workflow_id)
    version = body.version or int(workflow["latest_version"])
    compiled = await compiled_version(state, workflow, version)
    check_inputs(compiled.ir.inputs_schema, body.inputs)
    run_id = uuid.uuid4().hex
    await state.limiter.check_submission(caller, compiled.ir.agent_count, run_id)
    try:
        row = await state.pool.fetchrow(
            "INSERT INTO runs (id, tenant_id, workflow_id, workflow_name, version, status, inputs, idempotency_key,"
            " request_hash, started_by, ir_version, definition) VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8,"
            f" $9, 1, $10) ON CONFLICT DO NOTHING RETURNING {RUN_COLUMNS}",
            run_id,
            caller.tenant_id,
            workflow["id"],
            workflow["name"],
            version,
            body.inputs,
            idempotency_key,
            digest,
            caller.key_id,
            compiled.definition.to_json(),
        )
        if row is None:
            # Another request with this idempotency key won the insert: answer with its run.
            await state.limiter.release(caller.tenant_id, run_id)
            replay = await _replay(state, caller.tenant_id, idempotency_key or "", digest)
            if replay is None:
                raise ApiError(409, f"run {run_id}: conflicting insert; retry the request")
            return replay
        start = RunStart(
            run_id=run_id,
            tenant_id=caller.tenant_id,
            workflow_id=workflow["id"],
            workflow_name=workflow["name"],
            version=version,
            inputs=body.inputs,
            started_by=caller.key_id,
        )
        await start_run(state.scripts, start, compiled.ir, max_agents=state.settings.max_agents)
    except BaseException:
        await state.limiter.release(caller.tenant_id, run_id)
        raise
    state.metrics.counter("aob_runs_started_total", "runs started through the API").inc()
    return Submitted(row, created=True)
