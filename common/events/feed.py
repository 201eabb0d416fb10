"""One client's event feed: the backlog after its cursor, then live events, each exactly once and in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from common.events.frames import WireEvent, id_key
from common.events.history import EventHistory
from common.events.hub import Batch, Hub, Subscription

logger = logging.getLogger(__name__)

# No bound: every event at hand in one chunk.
UNBOUNDED = 2**62


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event to send; ``live`` when it came from the reader rather than from the history."""

    event: WireEvent
    live: bool


@dataclass(frozen=True, slots=True)
class Chunk:
    """Consecutive events to send together, oldest first; ``live`` when they came from the reader."""

    events: list[WireEvent]
    live: bool


class EventFeed:
    """Subscribes on entry, unsubscribes on exit; ``deliveries()`` yields the events after ``after``.

    The subscription exists before the backlog is read, and every batch says after which id it was read, so a
    batch that starts past what was delivered is preceded by a fill from the history: no gap, and ids at or
    below the last delivered one are skipped: no duplicate.
    """

    def __init__(self, hub: Hub, history: EventHistory, stream: str, after: str, run_id: str | None = None) -> None:
        self.hub = hub
        self.history = history
        self.stream = stream
        self.after = after
        self.run_id = run_id
        self._subscription: Subscription | None = None
        # The last event handed out (by chunks() or to the sink), and what write_directly() set up.
        self._last = after
        self._max_bytes = UNBOUNDED
        self._sink: Callable[[Sequence[WireEvent]], bool] | None = None

    async def __aenter__(self) -> EventFeed:
        self._subscription = self.hub.subscribe(self.stream)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._subscription is not None:
            self.hub.unsubscribe(self._subscription)
            self._subscription = None

    @property
    def overflowed(self) -> asyncio.Event:
        """Set when the client fell too far behind; ``deliveries()`` then raises ``Overflowed``."""
        return self._active().overflowed

    async def deliveries(self) -> AsyncGenerator[Delivery, None]:
        """Backlog then live events, one at a time; a run's feed ends after its terminal event. Raises
        ``Overflowed``."""
        chunks = self.chunks()
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                for event in chunk.events:
                    yield Delivery(event, chunk.live)

    async def chunks(self, max_bytes: int = UNBOUNDED) -> AsyncGenerator[Chunk, None]:
        """Backlog then live events, as many at a time as are at hand, each chunk's WebSocket frames together at
        most ``max_bytes`` (or one event); a run's feed ends after its terminal event. Raises ``Overflowed``.

        Live batches the client's queue holds when it asks are merged, so a client that fell behind catches up in
        few writes. With ``write_directly``, a live batch that arrives while the consumer waits here, caught up, is
        handed to the sink at once and never comes out of this generator.
        """
        subscription = self._active()
        self._max_bytes = max_bytes
        self._last = self.after
        async for page in self.history.pages(self.stream, self._last, self.run_id):
            events, ended = self._after(page)
            for chunk in _split(events, max_bytes, live=False):
                yield chunk
            self._last = page[-1].id
            if ended:
                return
        while True:
            live: list[WireEvent] = []
            subscription.direct = self._direct if self._sink is not None else None
            try:
                batches = await subscription.get()
            finally:
                subscription.direct = None
            for batch in batches:
                if id_key(batch.after) > id_key(self._last):
                    # The reader read this batch after events this feed has not delivered: fill from the history.
                    for chunk in _split(live, max_bytes, live=True):
                        yield chunk
                    live = []
                    async for page in self.history.pages(self.stream, self._last, self.run_id):
                        events, ended = self._after(page)
                        for chunk in _split(events, max_bytes, live=False):
                            yield chunk
                        self._last = page[-1].id
                        if ended:
                            return
                events, ended = self._after(batch.events)
                live += events
                if events:
                    self._last = events[-1].id
                if ended:
                    break
            for chunk in _split(live, max_bytes, live=True):
                yield chunk
            if live and self._ends(live[-1]):
                return

    def write_directly(self, sink: Callable[[Sequence[WireEvent]], bool]) -> None:
        """From now on, hand ``sink`` each live batch that arrives while ``chunks()`` waits, caught up: at once,
        in the reader's task, instead of waking the consumer. ``sink`` answers whether it wrote the events; when
        it cannot (its connection is not writable now), they are queued for ``chunks()`` as usual.

        Only contiguous batches within ``max_bytes`` and without a run's terminal event go this way: a gap, an
        overlap or the end still need ``chunks()``.
        """
        self._sink = sink

    def _direct(self, batch: Batch) -> bool:
        if self._sink is None or batch.after != self._last:
            return False
        if not batch.events:
            # The stream started where this feed is: nothing to fill, nothing to write.
            return True
        if sum(len(event.ws_frame) for event in batch.events) > self._max_bytes:
            return False
        if self.run_id is not None and any(event.terminal for event in batch.events):
            return False
        try:
            written = self._sink(batch.events)
        except Exception:  # one client's failure must not stop the reader that serves every client
            logger.exception("direct write to a client of %s failed; its events go through the feed", self.stream)
            self._sink = None
            return False
        if written:
            self._last = batch.events[-1].id
        return written

    def _after(self, events: Sequence[WireEvent]) -> tuple[list[WireEvent], bool]:
        # The events past the last one handed out, up to and including a run's terminal event; and whether that
        # ended the feed.
        after = id_key(self._last)
        out: list[WireEvent] = []
        for event in events:
            if id_key(event.id) <= after:
                continue
            out.append(event)
            if self._ends(event):
                return out, True
        return out, False

    def _ends(self, event: WireEvent) -> bool:
        return self.run_id is not None and event.terminal

    def _active(self) -> Subscription:
        if self._subscription is None:
            raise RuntimeError(f"event feed of {self.stream}: use it inside `async with`")
        return self._subscription


def _split(events: list[WireEvent], max_bytes: int, *, live: bool) -> Iterator[Chunk]:
    # Consecutive runs of events whose frames fit in ``max_bytes``; an event larger than that goes alone.
    start, size = 0, 0
    for i, event in enumerate(events):
        size += len(event.ws_frame)
        if size > max_bytes and i > start:
            yield Chunk(events[start:i], live)
            start, size = i, len(event.ws_frame)
    if start < len(events):
        yield Chunk(events[start:] if start else events, live)
