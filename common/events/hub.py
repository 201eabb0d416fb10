"""Who watches which stream: subscriptions with bounded queues, fed by the process's one stream reader."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from common.errors import AobError
from common.events.frames import WireEvent


@dataclass(frozen=True, slots=True)
class Batch:
    """Events the reader got from one stream in one read: every entry after ``after``, in order."""

    after: str
    events: tuple[WireEvent, ...]


class Overflowed(AobError):
    """The subscriber fell more than its queue size behind; it must resume from its last delivered id."""

    code = "overflowed"


class Subscription:
    """One client's view of one stream: batches queue up here until the client's sender takes them."""

    def __init__(self, stream: str, max_events: int) -> None:
        self.stream = stream
        self.max_events = max_events
        self.overflowed = asyncio.Event()
        self._batches: deque[Batch] = deque()
        self._queued = 0
        self._ready = asyncio.Event()
        # Set by the feed while its consumer waits, caught up: takes a batch at once (True) instead of queueing it.
        self.direct: Callable[[Batch], bool] | None = None

    def offer(self, batch: Batch) -> None:
        """Queue ``batch`` (unless ``direct`` took it); past ``max_events`` queued, drop everything and flag the
        overflow instead."""
        if self.overflowed.is_set():
            return
        if self.direct is not None and not self._batches and self.direct(batch):
            return
        if self._queued + len(batch.events) > self.max_events:
            self._batches.clear()
            self._queued = 0
            self.overflowed.set()
            self._ready.set()
            return
        self._batches.append(batch)
        self._queued += len(batch.events)
        self._ready.set()

    async def get(self) -> list[Batch]:
        """Every batch queued, oldest first, once there is one; raises ``Overflowed`` once the queue has overflowed.

        Taking all at once lets a client that fell a little behind catch up in one write.
        """
        while not self._batches:
            if self.overflowed.is_set():
                raise Overflowed(f"{self.stream}: more than {self.max_events} events queued for one client")
            self._ready.clear()
            await self._ready.wait()
        if self.overflowed.is_set():
            raise Overflowed(f"{self.stream}: more than {self.max_events} events queued for one client")
        batches = list(self._batches)
        self._batches.clear()
        self._queued = 0
        return batches


@dataclass
class _Watched:
    # None until the stream's current end is known; the reader skips the stream until then.
    cursor: str | None
    subscribers: set[Subscription] = field(default_factory=set)


class Hub:
    """The watched streams, each with the reader's cursor and its subscribers."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._streams: dict[str, _Watched] = {}
        self._on_change: Callable[[], None] = lambda: None

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a stream starts being watched (the reader re-arms its XREAD)."""
        self._on_change = callback

    def subscribe(self, stream: str) -> Subscription:
        """A new subscription to ``stream``; a stream not yet watched wakes the reader."""
        subscription = Subscription(stream, self.queue_size)
        watched = self._streams.get(stream)
        if watched is None:
            watched = self._streams[stream] = _Watched(cursor=None)
            watched.subscribers.add(subscription)
            self._on_change()
        else:
            watched.subscribers.add(subscription)
        return subscription

    def unstarted(self) -> list[str]:
        """Streams newly watched, whose starting cursor the reader has yet to look up."""
        return [stream for stream, w in self._streams.items() if w.cursor is None]

    def start(self, stream: str, cursor: str) -> None:
        """Read ``stream`` after ``cursor`` from now on (its end when it was first watched); each subscriber gets
        an empty batch after ``cursor``, so one whose backlog ended before it fills the gap from the history."""
        watched = self._streams.get(stream)
        if watched is not None and watched.cursor is None:
            watched.cursor = cursor
            # Events up to ``cursor`` are never dispatched: without this, a stream that then stays quiet (a run
            # that just ended) would leave them undelivered until a later event revealed the gap.
            started = Batch(cursor, ())
            for subscription in watched.subscribers:
                subscription.offer(started)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop feeding ``subscription``; a stream nobody watches any more is dropped."""
        watched = self._streams.get(subscription.stream)
        if watched is None:
            return
        watched.subscribers.discard(subscription)
        if not watched.subscribers:
            del self._streams[subscription.stream]

    def cursors(self) -> dict[str, str]:
        """What the reader should read next: each ready stream and the id after which to read it."""
        return {stream: w.cursor for stream, w in self._streams.items() if w.cursor is not None}

    def dispatch(self, stream: str, after: str, events: tuple[WireEvent, ...]) -> None:
        """Hand the events read after ``after`` to every subscriber, then advance the stream's cursor."""
        watched = self._streams.get(stream)
        if watched is None or watched.cursor != after or not events:
            # Unwatched meanwhile, or restarted from another cursor: this read is stale.
            return
        batch = Batch(after, events)
        for subscription in watched.subscribers:
            subscription.offer(batch)
        watched.cursor = events[-1].id

    @property
    def subscriber_count(self) -> int:
        return sum(len(w.subscribers) for w in self._streams.values())
