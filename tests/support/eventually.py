"""Wait for a condition without fixed sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T]], timeout_s: float = 10.0, interval_s: float = 0.02) -> T:
    """Call ``check`` until it returns a truthy value or stops raising ``AssertionError``; return that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            result = await check()
            if result:
                return result
            last: BaseException | None = AssertionError(f"check returned {result!r}")
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout_s}s: {last}")
        await asyncio.sleep(interval_s)
