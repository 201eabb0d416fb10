"""Submitting a run: idempotency, input validation, rate limits, the ``runs`` row, then the engine's start.

A submission makes one Postgres round trip (the insert) and two Redis ones (admission, the start) when the caller's
key and the workflow are in this process's caches; the answer is built from what the request holds.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from common.auth import Principal
from common.json_schema import InvalidSchema, instance_errors
from common.runs.scripts import now_ms
from common.runs.start import RunStart
from common.runs.stranded import start_if_stranded
from common.tracing import AttributeValue, traced
from orchestrator._errors import ApiError
from orchestrator._models import RunCreate
from orchestrator._ratelimit import DeferredCount
from orchestrator._run_view import RUN_COLUMNS, run_json, started_run_json
from orchestrator._state import AppState, CompiledVersion
from orchestrator._workflow_cache import LiveWorkflow
from orchestrator._workflows import compiled_version, live_workflow

_MAX_IDEMPOTENCY_KEY = 200

# The workflow is checked in the insert itself: still live and, for a run of the latest version, still at the
# version the cache named. No row back: the idempotency key was taken, or the cached workflow is stale.
_INSERT = """
INSERT INTO runs (id, tenant_id, workflow_id, workflow_name, version, status, inputs, idempotency_key, request_hash,
                  started_by, ir_version, definition, trigger_id)
SELECT $1, $2, w.id, w.name, $4, 'queued', $5, $6, $7, $8, 1, $9::text::jsonb, $11 FROM workflows w
WHERE w.id = $3 AND w.tenant_id = $2 AND w.archived_at IS NULL AND ($10::int IS NULL OR w.latest_version = $10)
ON CONFLICT DO NOTHING RETURNING workflow_name, created_at
"""


@dataclass(frozen=True)
class Submitted:
    """The run resource, and whether this request created it (False: an idempotent replay)."""

    body: dict[str, Any]
    created: bool


@dataclass(frozen=True)
class _Target:
    workflow: LiveWorkflow
    version: int
    compiled: CompiledVersion
    # The latest version the cache named, when the request asked for the latest; the insert checks it.
    expected_latest: int | None


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
    return Submitted(await run_json(state, row), created=False)


async def _target(state: AppState, tenant_id: str, body: RunCreate, *, fresh: bool) -> _Target:
    workflow = await live_workflow(state, tenant_id, body.workflow_id, fresh=fresh)
    version = body.version or workflow.latest_version
    compiled = await compiled_version(state, workflow, version)
    check_inputs(compiled.result.ir.inputs_schema, body.inputs)
    return _Target(workflow, version, compiled, None if body.version else workflow.latest_version)


async def submit_run(
    state: AppState,
    caller: Principal,
    body: RunCreate,
    idempotency_key: str | None,
    count: DeferredCount,
    *,
    trigger_id: str | None = None,
) -> Submitted:
    """Create and start a run, or return the one this idempotency key already made; ``count`` counts the request
    (with the run's admission when one starts); ``trigger_id`` names the webhook trigger that started it."""
    if idempotency_key is not None and not 0 < len(idempotency_key) <= _MAX_IDEMPOTENCY_KEY:
        length = len(idempotency_key)
        raise ApiError(422, f"Idempotency-Key: expected 1-{_MAX_IDEMPOTENCY_KEY} characters, got {length}")
    # Only a replay compares the hash: a run without an idempotency key stores none.
    digest = request_hash(body) if idempotency_key is not None else None
    if idempotency_key is not None and digest is not None:
        replay = await _replay(state, caller.tenant_id, idempotency_key, digest)
        if replay is not None:
            await count.alone()
            return replay
    run_id = uuid.uuid4().hex
    admitted = False
    try:
        # The cached workflow first; when the insert finds it stale, once more as Postgres has it now.
        for fresh in (False, True):
            target = await _target(state, caller.tenant_id, body, fresh=fresh)
            if not admitted:
                await count.with_admission(target.compiled.result.ir.agent_count, run_id)
                admitted = True
            row = await _insert(state, caller, body, target, run_id, idempotency_key, digest, trigger_id)
            if row is not None:
                break
            if idempotency_key is not None and digest is not None:
                # Another request with this idempotency key won the insert: answer with its run.
                replay = await _replay(state, caller.tenant_id, idempotency_key, digest)
                if replay is not None:
                    await state.limiter.release(caller.tenant_id, run_id)
                    return replay
            state.workflows.forget_tenant(caller.tenant_id)
        else:
            raise ApiError(409, f"run {run_id}: workflow '{body.workflow_id}' changed while starting; retry")
        started_ms = now_ms()
        attributes: dict[str, AttributeValue] = {"aob.run_id": run_id, "aob.workflow": row["workflow_name"]}
        # The run's trace is the request's: its spans are children of this one, a child of the request's span.
        with traced(state.tracing, "aob.run.start", attributes=attributes) as span:
            start = RunStart(
                run_id=run_id,
                tenant_id=caller.tenant_id,
                workflow_id=target.workflow.id,
                workflow_name=row["workflow_name"],
                version=target.version,
                inputs=body.inputs,
                started_by=caller.key_id,
                traceparent=span.traceparent if span is not None else None,
            )
            status = await state.starts.start(start, target.compiled.result.ir)
    except BaseException:
        if admitted:
            await state.limiter.release(caller.tenant_id, run_id)
        raise
    state.metrics.counter("aob_runs_started_total", "runs started through the API").inc()
    columns = _columns(start, row["created_at"])
    built = started_run_json(columns, target.compiled.result.ir, status, started_ms)
    return Submitted(built if built is not None else await run_json(state, columns), created=True)


async def _insert(
    state: AppState,
    caller: Principal,
    body: RunCreate,
    target: _Target,
    run_id: str,
    idempotency_key: str | None,
    digest: str | None,
    trigger_id: str | None,
) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await state.pool.fetchrow(
        _INSERT,
        run_id,
        caller.tenant_id,
        target.workflow.id,
        target.version,
        body.inputs,
        idempotency_key,
        digest,
        caller.key_id,
        target.compiled.definition_json,
        target.expected_latest,
        trigger_id,
    )
    return row


def _columns(start: RunStart, created_at: Any) -> dict[str, Any]:
    """The new run's ``runs`` columns, as the insert wrote them."""
    return {
        "id": start.run_id,
        "workflow_id": start.workflow_id,
        "workflow_name": start.workflow_name,
        "version": start.version,
        "status": "queued",
        "inputs": start.inputs,
        "outputs": None,
        "error": None,
        "ir_version": 1,
        "parent_run_id": None,
        "started_by": start.started_by,
        "created_at": created_at,
        "started_at": None,
        "ended_at": None,
    }
