"""Event retention: copy an ended run's events into Postgres ``run_events``, and only then trim them from Redis.

Ended runs are found by consuming every tenant stream (``events:tenant:<tenant>``, where each run's terminal
event is also written) with the consumer group ``archiver``, so any number of archivers share the work and an
entry is acknowledged only once its run is archived. Tenants come from the Postgres ``tenants`` table. A run
whose terminal entry was trimmed from a tenant stream before any archiver read it keeps its events in Redis
(nothing is lost); ``archive_run`` archives it on demand.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.events.frames import START_ID, TERMINAL_EVENT_TYPES, id_key
from common.events.history import ARCHIVED_FIELD
from common.keys import Keys
from common.metrics import Metrics
from common.streams import Batch, StreamConsumer

logger = logging.getLogger(__name__)

ARCHIVER_GROUP = "archiver"
# KEYS[1] = a run's events stream, ARGV[1] = the first id to keep. Atomic, so an event appended in between stays.
_TRIM_ARCHIVED = """
redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
if redis.call('XLEN', KEYS[1]) == 0 then redis.call('DEL', KEYS[1]) end
"""
_INSERT_SQL = """
INSERT INTO run_events (run_id, event_id, type, data, created_at)
VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1000))
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
        self._trim = redis.register_script(_TRIM_ARCHIVED)
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
        stream = self.keys.events(run_id)
        archived = await self.redis.hget(self.keys.run(run_id), ARCHIVED_FIELD)
        last = archived or START_ID
        copied = 0
        while True:
            entries = await self.redis.xrange(stream, f"({last}", "+", count=self.page)
            if not entries:
                break
            rows = [_row(run_id, entry_id, fields) for entry_id, fields in entries]
            await self.pool.executemany(_INSERT_SQL, rows)
            copied += len(rows)
            last = entries[-1][0]
        if copied:
            await self._mark_and_trim(run_id, last)
            logger.info("archived %d events of run %s (through %s)", copied, run_id, last)
        return copied

    async def run(self) -> None:
        """Archive runs as their terminal events appear, until ``shutdown``."""
        await self._consumer.run()

    async def shutdown(self) -> None:
        """Stop following the tenant streams. Idempotent."""
        await self._consumer.shutdown()

    async def _tenant_streams(self) -> list[str]:
        tenants = [row["id"] for row in await self.pool.fetch("SELECT id FROM tenants ORDER BY id")]
        return [self.keys.tenant_events(t) for t in tenants]

    async def _handle_batch(self, batch: Batch) -> None:
        entries: list[tuple[str, dict[str, str] | None]] = list(batch.entries)
        await self._handle(batch.stream, entries)

    async def _handle(self, stream: str, entries: list[tuple[str, dict[str, str] | None]]) -> None:
        for entry_id, fields in entries:
            event = json.loads(fields["e"]) if fields else {}
            if event.get("type") in TERMINAL_EVENT_TYPES and event.get("run_id"):
                await self.archive_run(event["run_id"])
            await self.redis.xack(stream, ARCHIVER_GROUP, entry_id)

    async def _mark_and_trim(self, run_id: str, last: str) -> None:
        run_key = self.keys.run(run_id)
        if await self.redis.exists(run_key):
            await self.redis.hset(run_key, ARCHIVED_FIELD, last)
        ms, seq = id_key(last)
        # MINID removes exactly the archived prefix: an event appended meanwhile is never trimmed unarchived. A
        # stream left empty goes too: each ended run would otherwise keep an empty stream key for good.
        await self._trim(keys=[self.keys.events(run_id)], args=[f"{ms}-{seq + 1}"])


def _row(run_id: str, entry_id: str, fields: dict[str, str]) -> tuple[Any, ...]:
    event = json.loads(fields["e"])
    return run_id, entry_id, str(event.get("type", "")), event, int(event.get("ts", 0))
