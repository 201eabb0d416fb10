"""A periodic task with the consumers' error handling: each failure is logged, counted and retried with backoff."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from common.retry import Retry, sleep_unless

logger = logging.getLogger(__name__)


class PeriodicTask:
    """Calls ``action`` at once, then every ``interval_s`` until ``shutdown()``; a failed call is tried again after
    a capped backoff rather than the interval. ``shutdown`` lets a call in progress finish."""

    def __init__(self, action: Callable[[], Awaitable[object]], interval_s: float, *, retry: Retry, stage: str) -> None:
        self._action = action
        self._interval_s = interval_s
        self._retry = retry
        self._stage = stage
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> PeriodicTask:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def run(self) -> None:
        """Call the action until ``shutdown``."""
        while await self._retry.until_done(self._stage, self._action, self._stopping):
            await sleep_unless(self._stopping, self._interval_s)
        logger.debug("%s: %s stopped", self._retry.name, self._stage)

    async def shutdown(self) -> None:
        """Stop after the call in progress, if any. Idempotent."""
        self._stopping.set()
