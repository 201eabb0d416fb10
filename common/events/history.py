"""Past events of a stream: from Redis while it holds them, from the Postgres archive once a run was trimmed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import redis.asyncio as aioredis

from common.events.frames import START_ID, WireEvent, from_entry, id_key, wire_event
from common.keys import Keys

# Set on ``run:{R}`` by the archiver: the last event id copied to Postgres (and trimmed from Redis).
ARCHIVED_FIELD = "events_archived"

_ARCHIVED_PAGE_SQL = """
SELECT event_id, data FROM run_events
WHERE run_id = $1
  AND (split_part(event_id, '-', 1)::bigint, split_part(event_id, '-', 2)::bigint) > ($2::bigint, $3::bigint)
ORDER BY split_part(event_id, '-', 1)::bigint, split_part(event_id, '-', 2)::bigint
LIMIT $4
"""


class EventHistory:
    """Pages through the events after a cursor, for backlogs, gap fills and ``?format=json``."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool | None, *, page_size: int = 500) -> None:
        self.redis = redis
        self.keys = keys
        self.pool = pool
        self.page_size = page_size

    async def page(self, stream: str, after: str, run_id: str | None = None) -> list[WireEvent]:
        """Up to ``page_size`` events of ``stream`` after ``after``, oldest first.

        With ``run_id``, events already archived (or a run whose Redis keys are gone) are read from Postgres.
        """
        if run_id is None:
            entries = await self.redis.xrange(stream, f"({after}", "+", count=self.page_size)
            return [from_entry(entry_id, fields) for entry_id, fields in entries]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xrange(stream, f"({after}", "+", count=self.page_size)
            pipe.hmget(self.keys.run(run_id), ARCHIVED_FIELD, "tenant")
            entries, (archived, tenant) = await pipe.execute()
        archived_past_cursor = archived is not None and id_key(after) < id_key(archived)
        if self.pool is not None and (archived_past_cursor or (not entries and tenant is None)):
            events = await _archived_page(self.pool, run_id, after, self.page_size)
            if events:
                return events
        return [from_entry(entry_id, fields) for entry_id, fields in entries]

    async def pages(
        self, stream: str, after: str = START_ID, run_id: str | None = None
    ) -> AsyncIterator[list[WireEvent]]:
        """Every event after ``after``, page by page, until the stream's current end."""
        while True:
            events = await self.page(stream, after, run_id)
            if not events:
                return
            yield events
            after = events[-1].id
            if len(events) < self.page_size:
                return

    async def run_tenant(self, run_id: str) -> str | None:
        """The tenant owning ``run_id``: from its Redis hash, else its Postgres row; None when unknown."""
        tenant: str | None = await self.redis.hget(self.keys.run(run_id), "tenant")
        if tenant is None and self.pool is not None:
            tenant = await self.pool.fetchval("SELECT tenant_id FROM runs WHERE id = $1", run_id)
        return tenant


async def _archived_page(pool: asyncpg.Pool, run_id: str, after: str, limit: int) -> list[WireEvent]:
    ms, seq = id_key(after)
    rows = await pool.fetch(_ARCHIVED_PAGE_SQL, run_id, ms, seq, limit)
    return [wire_event(row["event_id"], row["data"]) for row in rows]
