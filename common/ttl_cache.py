"""A small in-process cache whose entries are trusted for a bounded time, and that its owner empties (all or part)
when told something changed: the API keys and workflows an API process looks up on every request.

Concurrent misses of one key share one lookup, so an entry expiring under load costs one query, not one per
request waiting. A lookup that started before a ``forget`` is not cached, and requests after it start their own.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """Values by key for ``ttl_s`` after their lookup (None results are not kept); at most ``max_entries``."""

    def __init__(self, ttl_s: float, *, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[K, tuple[V, float]] = {}
        self._pending: dict[K, asyncio.Future[V | None]] = {}
        # Bumped by every ``forget``: what a lookup started before it read is not kept.
        self.generation = 0

    def get(self, key: K) -> V | None:
        """The value cached for ``key`` while fresh, else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        return entry[0]

    async def load(self, key: K, lookup: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value of ``key``, else ``lookup()``'s (shared with concurrent callers, and kept)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(lookup())
            self._pending[key] = pending
            generation = self.generation
            pending.add_done_callback(lambda done: self._settle(key, done, generation))
        # Shielded: one caller cancelled does not cancel the lookup the others wait for.
        return await asyncio.shield(pending)

    def put(self, key: K, value: V, generation: int) -> None:
        """Keep ``value`` for ``ttl_s`` unless something was forgotten since ``generation`` was current."""
        if self._ttl_s <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = (value, time.monotonic() + self._ttl_s)

    def forget(self, matches: Callable[[K, V | None], bool]) -> None:
        """Drop the entries for which ``matches(key, value)`` holds; lookups in flight are not kept nor shared."""
        self.generation += 1
        for key in [key for key, (value, _) in self._entries.items() if matches(key, value)]:
            del self._entries[key]
        self._pending.clear()

    def entries(self) -> list[V]:
        """The values held now, fresh or not (for tests and introspection)."""
        return [value for value, _ in self._entries.values()]

    def _settle(self, key: K, done: asyncio.Future[V | None], generation: int) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if done.cancelled() or done.exception() is not None:
            return
        value = done.result()
        if value is not None:
            self.put(key, value, generation)
