"""Outages on demand: a client whose chosen method raises for its next few calls, the real one otherwise."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.exceptions


class Flaky:
    """Wraps ``target`` (a Redis client, an asyncpg pool); ``method`` raises ``error()`` on its next ``times`` calls
    (those whose arguments ``matching`` accepts, when given).

    Raising at call time fails ``await client.method(...)`` and ``async with pool.acquire()`` alike.
    """

    def __init__(
        self,
        target: Any,
        method: str,
        times: int,
        error: Callable[[], BaseException] = lambda: redis.exceptions.ConnectionError("injected outage"),
        matching: Callable[..., bool] = lambda *args, **kwargs: True,
    ) -> None:
        self._target = target
        self._method = method
        self._error = error
        self._matching = matching
        self.remaining = times
        self.failures = 0

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if name != self._method:
            return attribute

        def maybe_fail(*args: Any, **kwargs: Any) -> Any:
            if self.remaining > 0 and self._matching(*args, **kwargs):
                self.remaining -= 1
                self.failures += 1
                raise self._error()
            return attribute(*args, **kwargs)

        return maybe_fail


def errors(metrics: Any, consumer: str, stage: str) -> float:
    """The ``aob_consumer_errors_total`` sample of ``consumer`` and ``stage`` (0 when none was counted)."""
    value = metrics.registry.get_sample_value("aob_consumer_errors_total", {"consumer": consumer, "stage": stage})
    return float(value or 0)
