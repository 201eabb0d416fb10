"""What a process needs to serve live event streams: the hub, its one reader task and the history."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import asyncpg
import redis.asyncio as aioredis

from common.events.feed import EventFeed
from common.events.history import EventHistory
from common.events.hub import Hub
from common.events.merged import MergedFeed
from common.events.reader import StreamReader
from common.keys import Keys


class EventStreams:
    """Starts the stream reader on entry and stops it on exit; hands out feeds."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        pool: asyncpg.Pool | None,
        *,
        queue_size: int = 1000,
        block_ms: int = 1000,
        batch: int = 500,
        page_size: int = 500,
    ) -> None:
        self.keys = keys
        self.hub = Hub(queue_size)
        self.history = EventHistory(redis, keys, pool, page_size=page_size)
        self.reader = StreamReader(self.hub, redis, block_ms=block_ms, batch=batch)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> EventStreams:
        self._task = asyncio.create_task(self.reader.run(), name="stream-reader")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop the reader and close its connection; idempotent."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.reader.aclose()

    def run_feed(self, run_id: str, after: str) -> EventFeed:
        """The events of run ``run_id`` after ``after``, ending with its terminal event."""
        return EventFeed(self.hub, self.history, self.keys.events(run_id), after, run_id)

    def tenant_feed(self, tenant_id: str, after: str) -> MergedFeed:
        """Run-level events of every run of ``tenant_id`` after ``after`` (every shard's); never ends."""
        feeds = [EventFeed(self.hub, self.history, stream, after) for stream in self.keys.tenant_events(tenant_id)]
        return MergedFeed(feeds, after)
