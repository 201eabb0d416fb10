"""Backoff, which errors are transient, and the retry helpers' counting."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError, ResponseError

from common.errors import AobError
from common.metrics import Metrics
from common.retry import Backoff, Retry, is_transient
from tests.support.faults import errors


def test_backoff_doubles_then_stays_under_the_cap() -> None:
    backoff = Backoff(base_s=0.1, cap_s=1.0)
    for failures in range(1, 12):
        ceiling = min(1.0, 0.1 * 2 ** (failures - 1))
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay_s(failures) <= ceiling
    # Growth: the floor of the fourth wait is above the ceiling of the first.
    assert min(backoff.delay_s(4) for _ in range(50)) > max(backoff.delay_s(1) for _ in range(50))


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (RedisConnectionError("refused"), True),
        (ReadOnlyError("replica"), True),
        (ResponseError("WRONGTYPE"), False),
        (OSError("reset"), True),
        (TimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), True),
        (asyncpg.exceptions.TooManyConnectionsError("full"), True),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), True),
        (asyncpg.exceptions.InterfaceError("pool is closing"), True),
        (asyncpg.exceptions.UniqueViolationError("dup"), False),
        (asyncpg.exceptions.InvalidTextRepresentationError("bad json"), False),
        (AobError("later", retryable=True), True),
        (AobError("never"), False),
        (ValueError("bug"), False),
    ],
)
def test_transient_errors(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


async def test_call_retries_transient_errors_and_counts_them() -> None:
    metrics = Metrics()
    retry = Retry("unit", metrics=metrics, backoff=Backoff(base_s=0.001, cap_s=0.002))
    outcomes: list[BaseException | str] = [OSError("a"), RedisConnectionError("b"), "done"]

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await retry.call("stage", attempt) == "done"
    assert errors(metrics, "unit", "stage") == 2

    async def bug() -> None:
        raise ValueError("not retried in place")

    with pytest.raises(ValueError):
        await retry.call("stage", bug)
    assert errors(metrics, "unit", "stage") == 2


async def test_until_done_retries_any_error_until_stopped() -> None:
    metrics = Metrics()
    retry = Retry("unit", metrics=metrics, backoff=Backoff(base_s=0.001, cap_s=0.002))
    stopping = asyncio.Event()
    tries = 0

    async def failing() -> None:
        nonlocal tries
        tries += 1
        if tries == 5:
            stopping.set()
        raise KeyError("bug")

    assert await retry.until_done("loop", failing, stopping) is False
    assert tries == 5 and errors(metrics, "unit", "loop") == 5
