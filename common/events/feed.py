"""One client's event feed: the backlog after its cursor, then live events, each exactly once and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from types import TracebackType

from common.events.frames import WireEvent, id_key
from common.events.history import EventHistory
from common.events.hub import Hub, Subscription


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event to send; ``live`` when it came from the reader rather than from the history."""

    event: WireEvent
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
        """Backlog then live events; a run's feed ends after its terminal event. Raises ``Overflowed``."""
        subscription = self._active()
        last = self.after
        async for page in self.history.pages(self.stream, last, self.run_id):
            for event in page:
                yield Delivery(event, live=False)
                last = event.id
                if self._ends(event):
                    return
        while True:
            batch = await subscription.get()
            if id_key(batch.after) > id_key(last):
                async for page in self.history.pages(self.stream, last, self.run_id):
                    for event in page:
                        yield Delivery(event, live=False)
                        last = event.id
                        if self._ends(event):
                            return
            for event in batch.events:
                if id_key(event.id) <= id_key(last):
                    continue
                yield Delivery(event, live=True)
                last = event.id
                if self._ends(event):
                    return

    def _ends(self, event: WireEvent) -> bool:
        return self.run_id is not None and event.terminal

    def _active(self) -> Subscription:
        if self._subscription is None:
            raise RuntimeError(f"event feed of {self.stream}: use it inside `async with`")
        return self._subscription
