"""Event retention: copy an ended run's events into Postgres ``run_events``, and only then trim them from Redis.

Ended runs are found by consuming every tenant stream (``events:tenant:<tenant>``, where each run's terminal
event is also written) with the consumer group ``archiver``, so any number of archivers share the work and an
entry is acknowledged only once its run is archived. Tenants come from the Postgres ``tenants`` table. A run
whose terminal entry was trimmed from a tenant stream before any archiver read it keeps its events in Redis
(nothing is lost); ``archive_run`` archives it on demand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.events.frames import START_ID, TERMINAL_EVENT_TYPES, id_key
from common.events.history import ARCHIVED_FIELD
from common.keys import Keys
from common.streams import ensure_group

logger = logging.getLogger(__name__)

ARCHIVER_GROUP = "archiver"
_INSERT_SQL = """
INSERT INTO run_events (run_id, event_id, type, data, created_at)
VALUES ($1, $2, $3, $4, to_timestamp($5::double precision / 1000))
ON CONFLICT (run_id, event_id) DO NOTHING
"""
_RETRY_S = 1.0


class EventArchiver:
    """Archives ended runs' events; ``run(stopping)`` follows the tenant streams, ``archive_run`` does one run.

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
    ) -> None:
        self.redis = redis
        self.pool = pool
        self.keys = keys
        self.consumer = consumer
        self.block_ms = block_ms
        self.batch = batch
        self.page = page
        self.tenant_refresh_s = tenant_refresh_s
        self.reclaim_idle_s = reclaim_idle_s
        self._streams: list[str] = []
        self._refreshed_at = float("-inf")

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

    async def run(self, stopping: asyncio.Event) -> None:
        """Archive runs as their terminal events appear, until ``stopping`` is set."""
        while not stopping.is_set():
            try:
                await self._step()
            except (RedisError, OSError, asyncpg.PostgresError) as exc:
                logger.warning("archiver: %s: %s; retrying in %.1fs", type(exc).__name__, exc, _RETRY_S)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), _RETRY_S)

    async def _step(self) -> None:
        if time.monotonic() - self._refreshed_at >= self.tenant_refresh_s:
            await self._refresh_streams()
            await self._reclaim()
        if not self._streams:
            await asyncio.sleep(self.block_ms / 1000)
            return
        reply = await self.redis.xreadgroup(
            ARCHIVER_GROUP,
            self.consumer,
            dict.fromkeys(self._streams, ">"),
            count=self.batch,
            block=self.block_ms,
        )
        for stream, entries in reply or ():
            await self._handle(stream, entries)

    async def _refresh_streams(self) -> None:
        tenants = [row["id"] for row in await self.pool.fetch("SELECT id FROM tenants ORDER BY id")]
        streams = [self.keys.tenant_events(t) for t in tenants]
        for stream in set(streams) - set(self._streams):
            await ensure_group(self.redis, stream, ARCHIVER_GROUP, START_ID)
        self._streams = streams
        self._refreshed_at = time.monotonic()

    async def _reclaim(self) -> None:
        # Entries read by an archiver that died before acknowledging them.
        for stream in self._streams:
            reply = await self.redis.xautoclaim(
                stream, ARCHIVER_GROUP, self.consumer, int(self.reclaim_idle_s * 1000), START_ID, count=self.batch
            )
            # Redis 6.2 answers [cursor, entries]; 7.x adds deleted ids: entries are second in both.
            entries = reply[1] if len(reply) > 1 else []
            if entries:
                await self._handle(stream, entries)

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
        # MINID removes exactly the archived prefix: an event appended meanwhile is never trimmed unarchived.
        await self.redis.xtrim(self.keys.events(run_id), minid=f"{ms}-{seq + 1}", approximate=False)


def _row(run_id: str, entry_id: str, fields: dict[str, str]) -> tuple[Any, ...]:
    event = json.loads(fields["e"])
    return run_id, entry_id, str(event.get("type", "")), event, int(event.get("ts", 0))
