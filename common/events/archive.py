"""Event retention: copy an ended run's events into Postgres ``run_events``, and only then trim them from Redis.

Ended runs are found by consuming every tenant stream (each shard's ``events:tenant:...:<tenant>``, where each
run's terminal event is also written) with the consumer group ``archiver``, so any number of archivers share the
work and an entry is acknowledged only once its run is archived. Tenants come from the Postgres ``tenants`` table. A run
whose terminal entry was trimmed from a tenant stream before any archiver read it keeps its events in Redis
(nothing is lost); ``archive_run`` archives it on demand.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from common.events.frames import START_ID, TERMINAL_EVENT_TYPES, id_key
from common.events.history import ARCHIVED_FIELD
from common.keys import Keys
from common.metrics import Metrics
from common.redis_client import call_script_many
from common.streams import Batch, StreamConsumer

logger = logging.getLogger(__name__)

ARCHIVER_GROUP = "archiver"
# Records how far a run's events are archived and trims exactly those. KEYS: the run's hash, its events stream.
# ARGV: the archived-cursor field, the last archived id, the first id to keep. MINID removes exactly the archived
# prefix (an event appended meanwhile is never trimmed unarchived); a stream left empty goes too, or each ended run
# would keep an empty stream key for good. The cursor is set only on a run still hot (never recreating its hash).
_MARK_AND_TRIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3])
if redis.call('XLEN', KEYS[2]) == 0 then redis.call('DEL', KEYS[2]) end
"""
_INSERT_SQL = """
INSERT INTO run_events (run_id, event_id, type, data, created_at)
VALUES ($1, $2, $3, $4::text::jsonb, to_timestamp($5::double precision / 1000))
ON CONFLICT (run_id, event_id) DO NOTHING
"""


class EventArchiver:
    """Archives ended runs' events; ``run()`` follows the tenant streams until ``shutdown()``, ``archive_run`` does
    one run.

    Each archived event is stored whole (``type``, ``run_id``, ``node_id``, ``ts``, ``data``) in the ``data``
    column, keyed by its stream id, so the history reads back exactly what Redis held.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        keys: Keys,
        *,
        consumer: str,
        block_ms: int = 1000,
        batch: int = 100,
        page: int = 1000,
        tenant_refresh_s: float = 30.0,
        reclaim_idle_s: float = 60.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.keys = keys
        self.page = page
        self._mark_and_trim = redis.register_script(_MARK_AND_TRIM)
        self._consumer = StreamConsumer(
            redis,
            name="archiver",
            group=ARCHIVER_GROUP,
            consumer=consumer,
            streams=self._tenant_streams,
            handler=self._handle_batch,
            batch=batch,
            block_ms=block_ms,
            claim_idle_s=reclaim_idle_s,
            refresh_s=tenant_refresh_s,
            metrics=metrics,
        )

    async def __aenter__(self) -> EventArchiver:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def archive_run(self, run_id: str) -> int:
        """Copy the run's events not yet archived to Postgres, then trim exactly those from Redis.

        Returns how many events were copied. Idempotent: rows already stored are kept as they are.
        """
        return await self.archive_runs([run_id])

    async def archive_runs(self, run_ids: Iterable[str]) -> int:
        """``archive_run`` for many runs with a few round trips in all, not a few per run; returns the events
        copied."""
        runs = list(dict.fromkeys(run_ids))
        if not runs:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for run_id in runs:
                pipe.hget(self.keys.run(run_id), ARCHIVED_FIELD)
            cursors = {
                run_id: archived or START_ID for run_id, archived in zip(runs, await pipe.execute(), strict=True)
            }
        copied: dict[str, int] = {}
        reading = runs
        while reading:
            async with self.redis.pipeline(transaction=False) as pipe:
                for run_id in reading:
                    pipe.xrange(self.keys.events(run_id), f"({cursors[run_id]}", "+", count=self.page)
                pages = await pipe.execute()
            rows = [
                _row(run_id, entry_id, fields)
                for run_id, page in zip(reading, pages, strict=True)
                for entry_id, fields in page
            ]
            if rows:
                await self.pool.executemany(_INSERT_SQL, rows)
            for run_id, page in zip(reading, pages, strict=True):
                if page:
                    cursors[run_id] = page[-1][0]
                    copied[run_id] = copied.get(run_id, 0) + len(page)
            # A full page may have more behind it.
            reading = [run_id for run_id, page in zip(reading, pages, strict=True) if len(page) == self.page]
        if copied:
            calls = []
            for run_id in copied:
                ms, seq = id_key(cursors[run_id])
                keys = [self.keys.run(run_id), self.keys.events(run_id)]
                calls.append((keys, [ARCHIVED_FIELD, cursors[run_id], f"{ms}-{seq + 1}"]))
            await call_script_many(self.redis, self._mark_and_trim, calls)
            for run_id, count in copied.items():
                logger.info("archived %d events of run %s (through %s)", count, run_id, cursors[run_id])
        return sum(copied.values())

    async def run(self) -> None:
        """Archive runs as their terminal events appear, until ``shutdown``."""
        await self._consumer.run()

    async def shutdown(self) -> None:
        """Stop following the tenant streams. Idempotent."""
        await self._consumer.shutdown()

    async def _tenant_streams(self) -> list[str]:
        tenants = [row["id"] for row in await self.pool.fetch("SELECT id FROM tenants ORDER BY id")]
        return [stream for t in tenants for stream in self.keys.tenant_events(t)]

    async def _handle_batch(self, batch: Batch) -> None:
        entries: list[tuple[str, dict[str, str] | None]] = list(batch.entries)
        await self._handle(batch.stream, entries)

    async def _handle(self, stream: str, entries: list[tuple[str, dict[str, str] | None]]) -> None:
        ended = []
        for _, fields in entries:
            event = json.loads(fields["e"]) if fields else {}
            if event.get("type") in TERMINAL_EVENT_TYPES and event.get("run_id"):
                ended.append(event["run_id"])
        await self.archive_runs(ended)
        # Acknowledged only once every run of the batch is archived: a failure leaves them all to be read again.
        if entries:
            await self.redis.xack(stream, ARCHIVER_GROUP, *(entry_id for entry_id, _ in entries))


def _row(run_id: str, entry_id: str, fields: dict[str, str]) -> tuple[Any, ...]:
    # The event goes in as the text Redis holds: decoding it only to encode it again for jsonb costs twice.
    text = fields["e"]
    event = orjson.loads(text)
    return run_id, entry_id, str(event.get("type", "")), text, int(event.get("ts", 0))
