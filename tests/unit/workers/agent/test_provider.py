"""The worker's provider calls: circuit breaker, backoff and Retry-After, the retrying caller (fake clock, sleep)."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import openai
import pytest

from common.agent_protocol import ProtocolWriter
from workers.agent._provider import (
    CircuitBreaker,
    ProviderFailed,
    RetryingCaller,
    backoff_delay_s,
    retry_after_s,
    transient_failure,
)

REQUEST = httpx2.Request("POST", "http://llm.test/v1/chat/completions")


def status_error(status: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    response = httpx2.Response(status, headers=headers or {}, request=REQUEST)
    cls = {429: openai.RateLimitError, 500: openai.InternalServerError, 400: openai.BadRequestError}.get(
        status, openai.APIStatusError
    )
    return cls(f"status {status}", response=response, body=None)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def scripted_call(outcomes: list[BaseException | str]) -> tuple[Callable[[], Awaitable[str]], list[int]]:
    calls: list[int] = []

    async def call() -> str:
        calls.append(1)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return call, calls


def caller(
    clock: FakeClock, *, max_retries: int = 4, threshold: int = 5, out: io.StringIO | None = None
) -> RetryingCaller:
    return RetryingCaller(
        max_retries=max_retries,
        breaker=CircuitBreaker(threshold=threshold, reset_after_s=30, clock=clock),
        base_s=0.5,
        max_s=4.0,
        writer=ProtocolWriter(out or io.StringIO()),
        sleep=clock.sleep,
    )


def test_breaker_opens_at_the_threshold_and_half_opens_after_the_period() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, reset_after_s=30, clock=clock)
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state() == "closed"
    breaker.record_success()
    for _ in range(3):
        breaker.record_failure()
    assert breaker.state() == "open"
    clock.now += 29.9
    assert breaker.state() == "open"
    clock.now += 0.2
    assert breaker.state() == "half_open"
    breaker.record_failure()  # the probe failed: open for a whole new period
    assert breaker.state() == "open"
    clock.now += 30
    breaker.record_success()
    assert breaker.state() == "closed" and breaker.failures == 0


def test_backoff_doubles_up_to_the_cap_and_retry_after_wins() -> None:
    delays = [backoff_delay_s(n, base_s=0.5, max_s=4, jitter=lambda: 0.0) for n in range(1, 6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert backoff_delay_s(1, base_s=0.5, max_s=4, jitter=lambda: 1.0) == 0.375
    assert backoff_delay_s(3, base_s=0.5, max_s=4, retry_after_s=7) == 7
    assert backoff_delay_s(3, base_s=0.5, max_s=4, retry_after_s=-2) == 0


def test_retry_after_forms() -> None:
    assert retry_after_s(httpx2.Headers({"retry-after": "3"})) == 3
    assert retry_after_s(httpx2.Headers({"retry-after-ms": "250", "retry-after": "3"})) == 0.25
    date = format_datetime(datetime.fromtimestamp(2_000_000_010, UTC), usegmt=True)
    assert retry_after_s(httpx2.Headers({"retry-after": date}), now=lambda: 2_000_000_000) == 10
    assert retry_after_s(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after_s(httpx2.Headers({})) is None


def test_transient_failures() -> None:
    assert transient_failure(status_error(429, {"retry-after": "2"})) == (True, 2)
    assert transient_failure(status_error(503)) == (True, None)
    assert transient_failure(status_error(400)) == (False, None)
    assert transient_failure(status_error(401)) == (False, None)
    assert transient_failure(openai.APIConnectionError(request=REQUEST)) == (True, None)


async def test_a_429_waits_its_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    out = io.StringIO()
    call, calls = scripted_call([status_error(429, {"retry-after": "2"}), status_error(500), "answer"])
    assert await caller(clock, out=out).call(call) == "answer"
    assert len(calls) == 3
    assert clock.slept[0] == 2 and 0.75 <= clock.slept[1] <= 1.0
    logs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [log["attempt"] for log in logs] == [1, 2] and "HTTP 429" in logs[0]["reason"]


async def test_retries_run_out_with_provider_error() -> None:
    clock = FakeClock()
    call, calls = scripted_call([status_error(500)] * 3)
    with pytest.raises(ProviderFailed, match="provider failed after 3 attempts: HTTP 500") as caught:
        await caller(clock, max_retries=2).call(call)
    assert caught.value.error_type == "provider_error" and len(calls) == 3


async def test_a_client_error_is_not_retried() -> None:
    clock = FakeClock()
    call, calls = scripted_call([status_error(400)])
    with pytest.raises(ProviderFailed, match="not retryable: HTTP 400") as caught:
        await caller(clock).call(call)
    assert caught.value.error_type == "provider_error" and len(calls) == 1 and clock.slept == []


async def test_consecutive_failures_open_the_breaker_and_later_calls_fail_fast() -> None:
    clock = FakeClock()
    retrying = caller(clock, max_retries=10, threshold=5)
    call, calls = scripted_call([status_error(500)] * 5)
    with pytest.raises(ProviderFailed, match="circuit open after 5 consecutive provider failures") as caught:
        await retrying.call(call)
    assert caught.value.error_type == "circuit_open" and len(calls) == 5
    again, more_calls = scripted_call(["never"])
    with pytest.raises(ProviderFailed, match="circuit open"):
        await retrying.call(again)
    assert more_calls == []
    clock.now += 31  # half open: one probe goes through and closes the breaker
    assert await retrying.call(again) == "never"
