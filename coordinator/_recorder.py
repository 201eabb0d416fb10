"""The recorder: copies every shard's ``wf.ledger`` into Postgres ``runs`` and ``run_steps`` in batches,
idempotently."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import RECORDER_GROUP, Keys
from common.metrics import Metrics
from common.runs.cas import expire_persisted, persist_blobs
from common.runs.ledger import BlobEntry, RunEntry, StepEntry, parse_ledger_entry
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.retention import HotRetention
from common.streams import Batch, StreamConsumer

logger = logging.getLogger(__name__)

# A row takes an entry only when it is newer than the one it holds (``ledger_seq``), so entries recorded out of
# order (several recorders) never move a run or step back. Entries from before numbering (seq 0) still apply to
# rows that have only seen such entries, under the old rules: terminal run states and step ranks never regress.
UPSERT_RUN = """
INSERT INTO runs AS r (id, tenant_id, workflow_id, workflow_name, version, status, inputs, outputs, error,
                       started_by, parent_run_id, parent_node_id, ir_version, started_at, ended_at, updated_at,
                       ledger_seq, epoch, deadline_at, reset_nodes, ir, traceparent)
VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7::jsonb, '{}'::jsonb), $8, $9, $10, $11, $12, COALESCE($13, 1), $14, $15,
        now(), $16, COALESCE($17, 0), $18, $19, $20::text::jsonb, $21)
ON CONFLICT (id) DO UPDATE SET
    status = CASE WHEN EXCLUDED.ledger_seq = 0 AND r.status IN ('succeeded', 'failed', 'cancelled', 'timed_out')
                  THEN r.status ELSE EXCLUDED.status END,
    outputs = CASE WHEN EXCLUDED.ledger_seq > 0 THEN EXCLUDED.outputs ELSE COALESCE(EXCLUDED.outputs, r.outputs) END,
    error = CASE WHEN EXCLUDED.ledger_seq > 0 THEN EXCLUDED.error ELSE COALESCE(EXCLUDED.error, r.error) END,
    -- Only a start or a resume that replaced them carries inputs.
    inputs = CASE WHEN $7::jsonb IS NULL THEN r.inputs ELSE EXCLUDED.inputs END,
    ir_version = GREATEST(r.ir_version, EXCLUDED.ir_version),
    started_at = COALESCE(r.started_at, EXCLUDED.started_at),
    ended_at = CASE WHEN EXCLUDED.ledger_seq > 0 THEN EXCLUDED.ended_at
                    ELSE COALESCE(EXCLUDED.ended_at, r.ended_at) END,
    ledger_seq = EXCLUDED.ledger_seq,
    updated_at = now(),
    -- The reset nodes belong to the resume that started the epoch: a late entry of an earlier epoch keeps them.
    reset_nodes = CASE WHEN EXCLUDED.epoch >= r.epoch THEN COALESCE(EXCLUDED.reset_nodes, r.reset_nodes)
                       ELSE r.reset_nodes END,
    epoch = GREATEST(r.epoch, EXCLUDED.epoch),
    deadline_at = COALESCE(EXCLUDED.deadline_at, r.deadline_at),
    ir = COALESCE(r.ir, EXCLUDED.ir),
    traceparent = COALESCE(r.traceparent, EXCLUDED.traceparent)
WHERE EXCLUDED.ledger_seq > r.ledger_seq OR (EXCLUDED.ledger_seq = 0 AND r.ledger_seq = 0)
"""

# Used only for entries from before numbering: a late entry never moves a step back from a final state.
_RANK = "(CASE {s} WHEN 'pending' THEN 0 WHEN 'queued' THEN 1 WHEN 'running' THEN 2 WHEN 'waiting' THEN 3 ELSE 4 END)"
UPSERT_STEP = f"""
INSERT INTO run_steps AS s (run_id, node_id, attempt, status, queued_at, started_at, ended_at, queue_ms, exec_ms,
                            worker_id, output_ref, error, ledger_seq, epoch, branch)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
ON CONFLICT (run_id, node_id, attempt) DO UPDATE SET
    status = EXCLUDED.status,
    queued_at = COALESCE(EXCLUDED.queued_at, s.queued_at),
    started_at = COALESCE(EXCLUDED.started_at, s.started_at),
    ended_at = COALESCE(EXCLUDED.ended_at, s.ended_at),
    queue_ms = COALESCE(EXCLUDED.queue_ms, s.queue_ms),
    exec_ms = COALESCE(EXCLUDED.exec_ms, s.exec_ms),
    worker_id = COALESCE(EXCLUDED.worker_id, s.worker_id),
    output_ref = COALESCE(EXCLUDED.output_ref, s.output_ref),
    error = COALESCE(EXCLUDED.error, s.error),
    ledger_seq = EXCLUDED.ledger_seq,
    epoch = COALESCE(EXCLUDED.epoch, s.epoch),
    branch = COALESCE(EXCLUDED.branch, s.branch)
WHERE EXCLUDED.ledger_seq > s.ledger_seq
   OR (EXCLUDED.ledger_seq = 0 AND s.ledger_seq = 0
       AND {_RANK.format(s="EXCLUDED.status")} >= {_RANK.format(s="s.status")})
"""


def _ts(ms: Any) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if isinstance(ms, int | float) else None


def _run_row(e: RunEntry) -> tuple[Any, ...]:
    return (
        e.run_id,
        e.tenant or "",
        e.workflow_id,
        e.workflow_name,
        e.version,
        e.status,
        e.inputs,
        e.outputs,
        e.error,
        e.started_by,
        e.parent_run_id,
        e.parent_node_id,
        e.ir_version,
        _ts(e.started_at),
        _ts(e.ended_at),
        e.seq,
        e.epoch,
        _ts(e.deadline_at),
        e.reset_nodes,
        e.ir,
        e.traceparent,
    )


def _step_row(e: StepEntry) -> tuple[Any, ...]:
    return (
        e.run_id,
        e.node_id,
        e.attempt,
        e.status,
        _ts(e.queued_at),
        _ts(e.started_at),
        _ts(e.ended_at),
        e.queue_ms,
        e.exec_ms,
        e.worker_id,
        e.output_ref,
        e.error,
        e.seq,
        e.epoch,
        e.branch,
    )


class Recorder:
    """Consumes the ledger in a consumer group; any number may run (one per coordinator)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        keys: Keys,
        consumer: str,
        batch: int = 500,
        reclaim_idle_s: float = 30.0,
        *,
        retention: HotRetention | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._redis = redis
        # Ended runs' hot keys expire once recorded (none when not given: tests that read Redis afterwards).
        self._retention = retention
        self._pool = pool
        self._keys = keys
        # Reads what this recorder left unacknowledged first; takes over what dead recorders did.
        self._consumer = StreamConsumer(
            redis,
            name="recorder",
            group=RECORDER_GROUP,
            consumer=consumer,
            streams=[shard.ledger for shard in keys.all_shards()],
            handler=self._record_batch,
            batch=batch,
            block_ms=500,
            claim_idle_s=reclaim_idle_s,
            delete_acked=True,
            metrics=metrics,
        )

    async def __aenter__(self) -> Recorder:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def run(self) -> None:
        """Record until ``shutdown``; the batch in hand is finished first."""
        await self._consumer.run()

    async def shutdown(self) -> None:
        """Stop reading the ledger. Idempotent."""
        await self._consumer.shutdown()

    async def _record_batch(self, batch: Batch) -> None:
        entries: list[tuple[str, dict[str, str] | None]] = list(batch.entries)
        await self._record(batch.stream, entries)

    async def _record(self, ledger: str, entries: list[tuple[str, dict[str, str] | None]]) -> int:
        if not entries:
            return 0
        runs: dict[str, RunEntry] = {}
        steps: dict[tuple[str, str, int], StepEntry] = {}
        blobs: list[str] = []
        for _, fields in entries:
            if not fields or "l" not in fields:
                continue
            # A malformed entry or one of a newer version raises: the batch stays unacknowledged, never misread.
            entry = parse_ledger_entry(fields["l"])
            # Each entry is a whole state: the newest of a batch is the one to record.
            if isinstance(entry, BlobEntry):
                blobs.append(entry.digest)
            elif isinstance(entry, RunEntry):
                if entry.run_id not in runs or entry.seq >= runs[entry.run_id].seq:
                    runs[entry.run_id] = entry
            else:
                key = (entry.run_id, entry.node_id, entry.attempt)
                if key not in steps or entry.seq >= steps[key].seq:
                    steps[key] = entry
        async with self._pool.acquire() as conn, conn.transaction():
            if runs:
                await conn.executemany(UPSERT_RUN, [_run_row(e) for e in runs.values()])
            if steps:
                await conn.executemany(UPSERT_STEP, [_step_row(e) for e in steps.values()])
            persisted = await persist_blobs(self._redis, self._keys, conn, blobs)
        await expire_persisted(self._redis, self._keys, persisted)
        if self._retention is not None:
            await self._retention.expire_ended(e.run_id for e in runs.values() if e.status in TERMINAL_RUN_STATUSES)
        ids = [entry_id for entry_id, _ in entries]
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(ledger, RECORDER_GROUP, *ids)
            pipe.xdel(ledger, *ids)
            await pipe.execute()
        return len(entries)
