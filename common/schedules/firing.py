"""Firing due schedules: each fire time becomes exactly one run, however many coordinators poll at once.

One transaction claims the due schedules (``FOR UPDATE SKIP LOCKED``: a schedule is handled by one poller at a time,
others pass over it), inserts one ``runs`` row per fire time with the idempotency key ``schedule:<id>:<fire time>``
(the unique index refuses a second row for the same fire time, across restarts too), and moves ``next_fire_at`` on.
The runs are started in Redis after the commit; a poller dying in between leaves them ``queued`` in Postgres, where
the reconciler's stranded-run pass starts them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from common.errors import AobError
from common.json_schema import InvalidSchema, instance_errors
from common.metrics import Metrics
from common.runs.admission import Admission
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_runs
from common.schedules.model import MAX_CRON_STEPS
from common.schedules.store import timing_of
from common.tracing import AttributeValue, Tracing
from common.workflow.compiler import CompileResult, compile_definition
from common.workflow.ir import IR

logger = logging.getLogger(__name__)

# A schedule whose fire failed (an error, not a refusal) is looked at again after this.
FAILED_RETRY = timedelta(seconds=60)

_CLAIM = """
SELECT s.*, w.name AS workflow_name, w.latest_version, w.archived_at,
       EXISTS (SELECT 1 FROM runs r WHERE r.schedule_id = s.id AND r.status IN ('queued', 'running', 'waiting'))
         AS has_live_run
FROM schedules s JOIN workflows w ON w.id = s.workflow_id
WHERE NOT s.paused AND s.next_fire_at <= $1
ORDER BY s.next_fire_at LIMIT $2
FOR UPDATE OF s SKIP LOCKED
"""

_INSERT_RUN = """
INSERT INTO runs (id, tenant_id, workflow_id, workflow_name, version, status, inputs, idempotency_key, started_by,
                  ir_version, definition, schedule_id)
VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, 1, $9::text::jsonb, $10)
ON CONFLICT DO NOTHING RETURNING id
"""


def idempotency_key(schedule_id: str, fire: datetime) -> str:
    """The idempotency key of the run a schedule starts at ``fire``: one per (schedule, fire time)."""
    return f"schedule:{schedule_id}:{fire.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


@dataclass(frozen=True)
class _Compiled:
    result: CompileResult
    definition_json: str


class ScheduleFirer:
    """Claims due schedules and starts their runs; safe to run in any number of processes at once."""

    def __init__(
        self,
        scripts: Scripts,
        pool: asyncpg.Pool,
        admission: Admission,
        *,
        max_agents: int,
        grace_s: float,
        batch: int = 100,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._scripts = scripts
        self._tracing = tracing
        self._pool = pool
        self._admission = admission
        self._max_agents = max_agents
        self._grace = timedelta(seconds=grace_s)
        self._batch = batch
        # Stored versions never change, so their compiled form is kept for the process's life.
        self._compiled: dict[tuple[str, int], _Compiled] = {}
        metrics = metrics or Metrics()
        self._fires = metrics.counter("aob_schedule_fires_total", "schedule fire times by outcome", ["outcome"])

    async def fire_due(self) -> list[str]:
        """Handle every schedule due now (in batches); returns the ids of the runs started."""
        started: list[str] = []
        while True:
            starts, claimed = await self._claim_batch()
            if self._tracing is not None:
                starts = [(_traced_start(self._tracing, start), ir) for start, ir in starts]
            for status, (start, _) in zip(
                await start_runs(self._scripts, starts, max_agents=self._max_agents), starts, strict=True
            ):
                logger.info("schedule started run %s (%s)", start.run_id, status)
                started.append(start.run_id)
            if claimed < self._batch:
                return started

    async def _claim_batch(self) -> tuple[list[tuple[RunStart, IR]], int]:
        starts: list[tuple[RunStart, IR]] = []
        async with self._pool.acquire() as conn, conn.transaction():
            now: datetime = await conn.fetchval("SELECT now()")
            rows = await conn.fetch(_CLAIM, now, self._batch)
            for row in rows:
                try:
                    async with conn.transaction():
                        starts += await self._fire(conn, row, now)
                except (AobError, ValueError):
                    # One broken schedule must not hold back the others: its work is rolled back to the savepoint
                    # and it is tried again later (rather than at every poll, where it would keep the batch full).
                    retry_at = now + FAILED_RETRY
                    logger.exception("schedule %s could not fire; tried again at %s", row["id"], retry_at.isoformat())
                    await conn.execute("UPDATE schedules SET next_fire_at = $2 WHERE id = $1", row["id"], retry_at)
        return starts, len(rows)

    async def _fire(self, conn: asyncpg.Connection, row: asyncpg.Record, now: datetime) -> list[tuple[RunStart, IR]]:
        fires = self._due(row, now)
        outcomes: Counter[str] = Counter()
        if row["overlap"] == "skip" and fires:
            # Several due fire times would overlap one another: only the latest may start, and none while a run of
            # this schedule is still live.
            keep = 0 if row["has_live_run"] else 1
            outcomes["skipped_overlap"] += len(fires) - keep
            fires = fires[len(fires) - keep :]
        compiled = await self._runnable(conn, row) if fires else None
        starts: list[tuple[RunStart, IR]] = []
        last_fire: datetime | None = None
        if fires and compiled is None:
            outcomes["refused"] += len(fires)
        elif compiled is not None:
            for fire in fires:
                start = await self._insert(conn, row, fire, compiled)
                if isinstance(start, RunStart):
                    starts.append((start, compiled.result.ir))
                    last_fire = fire
                outcomes[start if isinstance(start, str) else "started"] += 1
        for outcome, count in outcomes.items():
            if count:
                self._fires.labels(outcome).inc(count)
        await conn.execute(
            "UPDATE schedules SET next_fire_at = $2, last_fire_at = coalesce($3, last_fire_at) WHERE id = $1",
            row["id"],
            timing_of(row).next_after(now),
            last_fire,
        )
        return starts

    def _due(self, row: asyncpg.Record, now: datetime) -> list[datetime]:
        """The fire times to start now: those within the grace period, and the missed ones the catch-up keeps."""
        timing = timing_of(row)
        on_time_from = max(row["next_fire_at"], now - self._grace)
        on_time = timing.between(on_time_from, now, latest=MAX_CRON_STEPS)
        missed: list[datetime] = []
        if row["catchup"] != "none" and row["next_fire_at"] < on_time_from:
            keep = 1 if row["catchup"] == "last" else row["catchup_max"]
            missed = timing.between(row["next_fire_at"], on_time_from - timedelta(microseconds=1), latest=keep)
        if row["next_fire_at"] < on_time_from:
            since = row["next_fire_at"].isoformat()
            logger.warning(
                "schedule %s missed its fire times since %s; catchup %s fires %d of them now",
                *(row["id"], since, row["catchup"], len(missed)),
            )
        return missed + on_time

    async def _runnable(self, conn: asyncpg.Connection, row: asyncpg.Record) -> _Compiled | None:
        """The compiled version the schedule starts, or None (logged) when it cannot start a run now."""
        if row["archived_at"] is not None:
            logger.error("schedule %s: workflow %s is archived; fire skipped", row["id"], row["workflow_id"])
            return None
        version = row["version"] or row["latest_version"]
        key = (row["workflow_id"], version)
        compiled = self._compiled.get(key)
        if compiled is None:
            definition = await conn.fetchval(
                "SELECT definition FROM workflow_versions WHERE workflow_id = $1 AND version = $2", *key
            )
            if definition is None:
                logger.error("schedule %s: workflow %s has no version %s; fire skipped", row["id"], *key)
                return None
            result = compile_definition(definition, max_agents=self._max_agents, name=row["workflow_name"])
            compiled = self._compiled[key] = _Compiled(result, _json(result))
        problem = _inputs_problem(compiled.result.ir.inputs_schema, row["inputs"])
        if problem is not None:
            logger.error("schedule %s: inputs do not fit version %s: %s; fire skipped", row["id"], version, problem)
            return None
        return compiled

    async def _insert(
        self, conn: asyncpg.Connection, row: asyncpg.Record, fire: datetime, compiled: _Compiled
    ) -> RunStart | str:
        """The run of one fire time, inserted; or why none was: ``refused_quota`` or ``already_fired``."""
        run_id = uuid.uuid4().hex
        version = row["version"] or row["latest_version"]
        # Scheduled runs pass the run quotas the API's do; a slot admitted here for a transaction that then fails is
        # freed by the admission script once the run's hot state has not appeared for its grace period.
        verdict = await self._admission.admit_run(
            row["tenant_id"], run_id, agent_count=compiled.result.ir.agent_count, started_by=row["created_by"]
        )
        if not verdict.allowed:
            logger.error(
                "schedule %s: fire time %s starts no run: %s",
                *(row["id"], fire.isoformat(), verdict.refusal(self._admission.window_s)),
            )
            return "refused_quota"
        inserted = await conn.fetchval(
            _INSERT_RUN,
            run_id,
            row["tenant_id"],
            row["workflow_id"],
            row["workflow_name"],
            version,
            row["inputs"],
            idempotency_key(row["id"], fire),
            row["created_by"],
            compiled.definition_json,
            row["id"],
        )
        if inserted is None:
            # This fire time already has its run (an earlier life of a poller made it).
            await self._admission.release(row["tenant_id"], run_id)
            return "already_fired"
        return RunStart(
            run_id=run_id,
            tenant_id=row["tenant_id"],
            workflow_id=row["workflow_id"],
            workflow_name=row["workflow_name"],
            version=version,
            inputs=row["inputs"],
            started_by=row["created_by"],
        )


def _traced_start(tracing: Tracing, start: RunStart) -> RunStart:
    """``start`` in a trace of its own, rooted at a span for the fire time that started it."""
    attributes: dict[str, AttributeValue] = {"aob.run_id": start.run_id, "aob.workflow": start.workflow_name}
    with tracing.span("aob.schedule.fire", attributes=attributes) as span:
        return replace(start, traceparent=span.traceparent)


def _json(result: CompileResult) -> str:
    return json.dumps(result.definition.to_json())


def _inputs_problem(schema: dict[str, Any] | None, inputs: dict[str, Any]) -> str | None:
    if not schema:
        return None
    try:
        errors = instance_errors(schema, inputs)
    except InvalidSchema as exc:
        return exc.message
    return "; ".join(f"{error.at('inputs')}: {error.message}" for error in errors) or None
