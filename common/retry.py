"""Retrying what an outage breaks: which errors are transient, capped exponential backoff, and the log line and
``aob_consumer_errors_total`` sample every failure leaves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
from redis.backoff import EqualJitterBackoff
from redis.exceptions import ReadOnlyError, RedisError, ResponseError

from common.errors import AobError
from common.metrics import Metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")

_INFRASTRUCTURE_ERRORS = (RedisError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
# Errors about the command or the data fail the same way on every attempt: retried in place they would wedge a
# consumer on one entry, so they are left to redelivery (and the dead-letter limit) instead.
_DATA_ERRORS = (
    ResponseError,
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.SyntaxOrAccessError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` may not happen again: a Redis, Postgres or OS failure not caused by the data itself."""
    if isinstance(exc, AobError):
        return exc.retryable
    if isinstance(exc, ReadOnlyError):
        # A replica answering during a failover: the next attempt reaches the new primary.
        return True
    return isinstance(exc, _INFRASTRUCTURE_ERRORS) and not isinstance(exc, _DATA_ERRORS)


async def sleep_unless(stopping: asyncio.Event, delay_s: float) -> None:
    """Sleep ``delay_s``, or less when ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(delay_s):
            await stopping.wait()


class Backoff:
    """Capped exponential backoff with jitter: the n-th failure in a row waits between half and all of
    ``min(cap_s, base_s * 2**(n-1))``, so peers that failed together do not retry together."""

    def __init__(self, base_s: float = 0.1, cap_s: float = 10.0) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._curve = EqualJitterBackoff(cap=cap_s, base=base_s)

    def delay_s(self, failures: int) -> float:
        """How long to wait after the ``failures``-th failure in a row (1 for the first)."""
        return float(self._curve.compute(failures - 1))


class Retry:
    """One component's error policy: its name in logs and in the error metric, and the backoff between tries."""

    def __init__(self, name: str, *, metrics: Metrics | None = None, backoff: Backoff | None = None) -> None:
        self.name = name
        self.backoff = backoff or Backoff()
        self._errors = (metrics or Metrics()).counter(
            "aob_consumer_errors_total", "errors met by consumer and periodic loops", ["consumer", "stage"]
        )

    def count(self, stage: str) -> None:
        """Count one error of ``stage`` (the caller logs it)."""
        self._errors.labels(self.name, stage).inc()

    def failed(self, stage: str, exc: BaseException, failures: int) -> float:
        """Log and count the ``failures``-th error in a row of ``stage``; returns how long to wait until the next."""
        self.count(stage)
        delay_s = self.backoff.delay_s(failures)
        extra = {"consumer": self.name, "stage": stage, "failures": failures}
        message = "%s: %s failed (%s: %s); trying again in %.2fs"
        args = (self.name, stage, type(exc).__name__, exc, delay_s)
        if is_transient(exc):
            logger.warning(message, *args, extra=extra)
        else:
            logger.error(message, *args, extra=extra, exc_info=exc)
        return delay_s

    async def call(self, stage: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, tried again after each transient error with backoff; other errors propagate uncounted."""
        failures = 0
        while True:
            try:
                return await attempt()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                failures += 1
                await asyncio.sleep(self.failed(stage, exc, failures))

    async def until_done(self, stage: str, attempt: Callable[[], Awaitable[object]], stopping: asyncio.Event) -> bool:
        """``attempt()``, tried again after any error with backoff (a bug in a loop stage must not end its service);
        returns False when ``stopping`` was set before it succeeded."""
        failures = 0
        while not stopping.is_set():
            try:
                await attempt()
            except Exception as exc:
                failures += 1
                await sleep_unless(stopping, self.failed(stage, exc, failures))
            else:
                return True
        return False
