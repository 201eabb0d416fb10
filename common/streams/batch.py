"""What a stream consumer hands its handler (a ``Batch``, an ``Undeliverable``) and the ``Slots`` bounding them."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

Entry = tuple[str, dict[str, str]]
"""A stream entry as redis-py reads it: its id and its fields."""


class Slots:
    """Handler capacity counted in entries, shareable by several consumers; takers are served in turn.

    A reader waits only while it holds no slot, so consumers sharing slots can never wait on each other.
    """

    def __init__(self, total: int) -> None:
        if total < 1:
            raise ValueError(f"slots: expected at least 1, got {total}")
        self.total = total
        self._free = total
        self._turns: deque[object] = deque()
        self._changed = asyncio.Event()

    async def take(self, up_to: int, *, at_least: int = 1, stopped: Callable[[], bool] = lambda: False) -> int:
        """Wait for this taker's turn and ``at_least`` free slots, then take as many as are free up to ``up_to``.

        Returns 0 when ``stopped()`` turned true first (``wake`` makes waiters look again).
        """
        at_least = min(at_least, self.total)
        turn = object()
        self._turns.append(turn)
        try:
            # In turn, so a reader that releases and takes again at once cannot starve another taker.
            while self._turns[0] is not turn or self._free < at_least:
                if stopped():
                    return 0
                self._changed.clear()
                await self._changed.wait()
            if stopped():
                return 0
            taken = min(up_to, self._free)
            self._free -= taken
            return taken
        finally:
            self._turns.remove(turn)
            self._changed.set()

    def charge(self, count: int) -> None:
        """Take ``count`` more slots without waiting: a read of several streams may return more than it asked."""
        self._free -= count

    def release(self, count: int) -> None:
        """Give back ``count`` slots."""
        if count:
            self._free += count
            self._changed.set()

    def wake(self) -> None:
        """Make every waiter check its ``stopped`` again."""
        self._changed.set()


@dataclass(eq=False)
class Batch:
    """Entries of one stream handed to the handler together; each holds a slot until the handler returns,
    or until ``release`` names it (a handler finishing some entries early)."""

    stream: str
    entries: list[Entry]
    _settle: Callable[[str, set[str]], None] = field(repr=False)
    _held: set[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._held = {entry_id for entry_id, _ in self.entries}

    def release(self, entry_ids: Iterable[str]) -> None:
        """Free the slots of ``entry_ids`` (finished: acknowledged or given up) and stop keeping their claims."""
        settled = self._held.intersection(entry_ids)
        if settled:
            self._held -= settled
            self._settle(self.stream, settled)

    def release_all(self) -> None:
        """Free every slot the batch still holds."""
        self.release(list(self._held))


@dataclass(frozen=True)
class Undeliverable:
    """An entry delivered more than ``limit`` times, handed to the dead-letter callback instead of the handler."""

    stream: str
    entry_id: str
    fields: dict[str, str]
    deliveries: int
    limit: int

    @property
    def reason(self) -> str:
        return f"delivered {self.deliveries} times (limit {self.limit})"
