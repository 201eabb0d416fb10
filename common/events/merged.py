"""A tenant's feed: the run-level events of its runs, read from every shard's stream of the tenant.

Each shard's events come in order and exactly once (each is an ``EventFeed``); shards are interleaved as their
events arrive. A client resuming with ``after`` gets every shard's events after that id: on one server the shards'
ids share a clock, so this is what it missed, except an event another shard wrote in the same millisecond as the
last one it saw and that had not reached it yet.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence
from types import TracebackType

from common.events.feed import UNBOUNDED, Chunk, EventFeed
from common.events.frames import WireEvent


class MergedFeed:
    """Several ``EventFeed``s as one, with the interface the WebSocket and SSE senders use; never ends."""

    def __init__(self, feeds: Sequence[EventFeed], after: str) -> None:
        self._feeds = list(feeds)
        self.after = after
        self.run_id: str | None = None
        self._overflowed = asyncio.Event()
        self._watchers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> MergedFeed:
        for feed in self._feeds:
            await feed.__aenter__()
        self._watchers = [asyncio.create_task(self._watch(feed)) for feed in self._feeds]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for feed in self._feeds:
            await feed.__aexit__(exc_type, exc, tb)

    @property
    def overflowed(self) -> asyncio.Event:
        """Set when the client fell too far behind on any shard."""
        return self._overflowed

    async def chunks(self, max_bytes: int = UNBOUNDED) -> AsyncGenerator[Chunk, None]:
        """Every shard's backlog then live events, as each shard's feed yields them. Raises ``Overflowed``."""
        queue: asyncio.Queue[Chunk | BaseException] = asyncio.Queue()
        pumps = [asyncio.create_task(self._pump(feed, max_bytes, queue)) for feed in self._feeds]
        try:
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)

    def write_directly(self, sink: Callable[[Sequence[WireEvent]], bool]) -> None:
        """Each shard's caught-up live batches go to ``sink`` at once (see ``EventFeed.write_directly``)."""
        for feed in self._feeds:
            feed.write_directly(sink)

    async def _watch(self, feed: EventFeed) -> None:
        await feed.overflowed.wait()
        self._overflowed.set()

    @staticmethod
    async def _pump(feed: EventFeed, max_bytes: int, queue: asyncio.Queue[Chunk | BaseException]) -> None:
        chunks = feed.chunks(max_bytes)
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    await queue.put(chunk)
        except Exception as exc:  # handed to the consumer, which raises it
            await queue.put(exc)
