"""The durable record of runs in Postgres (``runs``, ``run_steps``), as rebuilding and reconciling read it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from common.runs.messages import TERMINAL_RUN_STATUSES

LIVE_RUN_STATUSES = ("queued", "running", "waiting")


def epoch_ms(ts: datetime | None) -> float | None:
    """``ts`` in epoch milliseconds, the unit of run state."""
    return None if ts is None else round(ts.timestamp() * 1000, 3)


class _Row(BaseModel):
    # Rows are read with ``SELECT *``: columns added by later migrations are ignored until a model names them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    # Added by a later migration (007): entries are numbered per run, and a rebuilt run must keep counting.
    ledger_seq: int = 0


class RunRecord(_Row):
    """One ``runs`` row."""

    id: str
    tenant_id: str
    workflow_id: str | None
    workflow_name: str | None
    version: int | None
    status: str
    inputs: dict[str, Any]
    started_by: str | None
    parent_run_id: str | None
    parent_node_id: str | None
    ir_version: int
    definition: dict[str, Any] | None
    definition_version: int
    started_at: datetime | None
    epoch: int
    deadline_at: datetime | None
    reset_nodes: list[str] | None
    ir: dict[str, Any] | None
    # Added by migration 016: the trace the run's spans join (None: started with tracing off).
    traceparent: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


class StepRecord(_Row):
    """One ``run_steps`` row: one attempt of one node. ``epoch`` is None when recorded before migration 006."""

    node_id: str
    attempt: int
    status: str
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    queue_ms: float | None
    exec_ms: float | None
    worker_id: str | None
    output_ref: str | None
    error: dict[str, Any] | None
    epoch: int | None
    branch: str | None


async def load_run(conn: asyncpg.Pool | asyncpg.Connection, run_id: str) -> RunRecord | None:
    """The ``runs`` row of ``run_id``, or None."""
    row = await conn.fetchrow("SELECT * FROM runs WHERE id = $1", run_id)
    return None if row is None else RunRecord.model_validate(dict(row))


async def load_steps(conn: asyncpg.Pool | asyncpg.Connection, run_id: str) -> list[StepRecord]:
    """Every recorded attempt of every node of ``run_id``."""
    rows = await conn.fetch("SELECT * FROM run_steps WHERE run_id = $1 ORDER BY node_id, attempt", run_id)
    return [StepRecord.model_validate(dict(row)) for row in rows]


async def child_run_ids(conn: asyncpg.Pool | asyncpg.Connection, run_id: str) -> list[str]:
    """The recorded child runs of ``run_id``."""
    rows = await conn.fetch("SELECT id FROM runs WHERE parent_run_id = $1 ORDER BY id", run_id)
    return [row["id"] for row in rows]


async def recorded_status(conn: asyncpg.Pool | asyncpg.Connection, run_id: str) -> str | None:
    """The status Postgres holds for ``run_id`` (None when it has no row)."""
    status: str | None = await conn.fetchval("SELECT status FROM runs WHERE id = $1", run_id)
    return status


async def live_runs(pool: asyncpg.Pool, *, after: str = "", limit: int = 500) -> list[tuple[str, str | None]]:
    """``(run id, parent run id)`` of up to ``limit`` started runs Postgres holds as live, by id after ``after``."""
    rows = await pool.fetch(
        "SELECT id, parent_run_id FROM runs WHERE status IN ('running', 'waiting') AND id > $1 ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [(row["id"], row["parent_run_id"]) for row in rows]
