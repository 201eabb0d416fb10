"""A run as the API shows it: hot state from Redis while it exists, else the rows the recorder wrote."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from common.runs.cas import is_cas_ref
from common.workflow.ir import IR
from orchestrator._errors import not_found
from orchestrator._state import AppState

RUN_COLUMNS = (
    "id, tenant_id, workflow_id, workflow_name, version, status, inputs, outputs, error, idempotency_key,"
    " request_hash, started_by, parent_run_id, ir_version, created_at, started_at, ended_at, schedule_id,"
    " trigger_id"
)


async def find_run(state: AppState, tenant_id: str, run_id: str) -> asyncpg.Record:
    """The tenant's run row; 404 for unknown ids and other tenants' runs alike."""
    row: asyncpg.Record | None = await state.pool.fetchrow(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE id = $1 AND tenant_id = $2", run_id, tenant_id
    )
    if row is None:
        raise not_found("run", run_id)
    return row


def _iso_ms(value: Any) -> str | None:
    if value in (None, "", 0):
        return None
    return datetime.fromtimestamp(float(value) / 1000, UTC).isoformat()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _output_fields(ref: str | None) -> dict[str, Any]:
    if ref is None:
        return {"output": None}
    if is_cas_ref(ref):
        return {"output": None, "output_ref": ref}
    return {"output": json.loads(ref)}


def _hot_node(state_json: str, output_ref: str | None) -> dict[str, Any]:
    return _node_fields(json.loads(state_json), output_ref)


def _node_fields(node: dict[str, Any], output_ref: str | None) -> dict[str, Any]:
    return {
        "status": node.get("status"),
        "attempt": node.get("attempt", 0),
        "error": node.get("error"),
        "queue_ms": node.get("queue_ms"),
        "exec_ms": node.get("exec_ms"),
        "queued_at": _iso_ms(node.get("queued_at")),
        "started_at": _iso_ms(node.get("started_at")),
        "ended_at": _iso_ms(node.get("ended_at")),
        "worker_id": node.get("worker_id"),
        "branch": node.get("branch"),
        **_output_fields(output_ref if output_ref is not None else node.get("output_ref")),
    }


def _stored_node(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "status": row["status"],
        "attempt": row["attempt"],
        "error": row["error"],
        "queue_ms": row["queue_ms"],
        "exec_ms": row["exec_ms"],
        "queued_at": _iso(row["queued_at"]),
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
        "worker_id": row["worker_id"],
        "branch": None,
        **_output_fields(row["output_ref"]),
    }


async def runs_started_by(
    state: AppState, tenant_id: str, source: Literal["schedule_id", "trigger_id"], source_id: str, limit: int
) -> list[dict[str, Any]]:
    """The latest ``limit`` runs a schedule or a trigger started, newest first (as last recorded in Postgres)."""
    rows = await state.pool.fetch(
        f"SELECT {RUN_COLUMNS} FROM runs WHERE tenant_id = $1 AND {source} = $2 ORDER BY created_at DESC, id DESC"
        " LIMIT $3",
        tenant_id,
        source_id,
        limit,
    )
    return [summary_json(row) for row in rows]


def summary_json(row: Mapping[str, Any]) -> dict[str, Any]:
    """The run fields its Postgres row holds (what lists show)."""
    return {
        "id": row["id"],
        "workflow_id": row["workflow_id"],
        "workflow_name": row["workflow_name"],
        "version": row["version"],
        "status": row["status"],
        "inputs": row["inputs"],
        "outputs": row["outputs"],
        "error": row["error"],
        "ir_version": row["ir_version"],
        "parent_run_id": row["parent_run_id"],
        "started_by": row["started_by"],
        # Only a run a schedule (a trigger) started has one; the API's own inserts leave it out of their columns.
        "schedule_id": row.get("schedule_id"),
        "trigger_id": row.get("trigger_id"),
        "created_at": _iso(row["created_at"]),
        "started_at": _iso(row["started_at"]),
        "ended_at": _iso(row["ended_at"]),
    }


async def run_json(state: AppState, row: Mapping[str, Any]) -> dict[str, Any]:
    """The full run resource: status, timings, inputs, outputs and per-node state with metrics."""
    run_id = row["id"]
    keys = state.keys
    async with state.redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.run(run_id))
        pipe.hgetall(keys.nodes(run_id))
        pipe.hgetall(keys.ctx(run_id))
        hot, nodes, ctx = await pipe.execute()
    body = summary_json(row)
    if hot:
        body.update(
            status=hot.get("status", body["status"]),
            ir_version=int(hot.get("ir_version") or body["ir_version"]),
            outputs=json.loads(hot["outputs"]) if hot.get("outputs") else body["outputs"],
            error=json.loads(hot["error"]) if hot.get("error") else None,
            started_at=_iso_ms(hot.get("started_ms")) or body["started_at"],
            ended_at=_iso_ms(hot.get("ended_ms")),
        )
        body["nodes"] = {node_id: _hot_node(raw, ctx.get(node_id)) for node_id, raw in nodes.items()}
        return body
    steps = await state.pool.fetch(
        "SELECT DISTINCT ON (node_id) node_id, attempt, status, queued_at, started_at, ended_at, queue_ms, exec_ms,"
        " worker_id, output_ref, error FROM run_steps WHERE run_id = $1 ORDER BY node_id, attempt DESC",
        run_id,
    )
    body["nodes"] = {step["node_id"]: _stored_node(step) for step in steps}
    return body


def started_run_json(row: Mapping[str, Any], ir: IR, status: str, started_ms: float) -> dict[str, Any] | None:
    """What ``run_json`` reads back from a run its start just wrote (``row``: the run's columns), built without
    reading: the run ``status`` the start returned, every entry node queued at attempt 1 at ``started_ms``.

    None when an entry node does more at the start than queue (an unknown type is skipped through, a delay node is
    due later, an agent node counts against the agent limit): read such a run back.
    """
    if any(not ir.nodes[n].known or ir.nodes[n].type in ("delay", "agent") for n in ir.entries):
        return None
    body = summary_json(row)
    stamp = _iso_ms(started_ms)
    body.update(status=status, ir_version=ir.version, error=None, started_at=stamp, ended_at=None)
    node = {"status": "queued", "attempt": 1, "queued_at": started_ms}
    body["nodes"] = {node_id: _node_fields(node, None) for node_id in ir.entries}
    return body


def ir_definition(ir: IR) -> dict[str, Any]:
    """A definition drawn from a compiled IR: a child run records only its IR, and the UI draws definitions."""
    nodes = [
        {"id": node.id, "type": node.type, "config": node.config}
        | ({"name": node.name} if node.name else {})
        | ({"join": node.join} if node.join != "all" else {})
        for node in ir.nodes.values()
    ]
    edges = [
        {"from": source, "to": edge.to}
        | ({"when": "failed"} if edge.on_failure else {"when": edge.when} if edge.when else {})
        | ({"branch": edge.branch} if edge.branch else {})
        for source, out in ir.successors.items()
        for edge in out
    ]
    definition: dict[str, Any] = {"name": ir.name, "nodes": nodes, "edges": edges}
    if ir.inputs_schema:
        definition["inputs"] = ir.inputs_schema
    return definition
