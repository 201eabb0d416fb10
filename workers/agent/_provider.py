"""Model calls the worker makes for its agent program: one streamed chat completion per turn, transient failures
retried with backoff, a circuit breaker. The program never sees the provider's address or key."""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar

import openai
from openai import AsyncOpenAI
from pydantic import SecretStr

from common.agent_protocol import ModelReply, ProtocolWriter, ToolCall, Usage
from common.errors import AobError

T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
# How often a line still being streamed is logged up to its last word, so a long paragraph shows as it comes.
WORDS_EVERY_S = 0.2


class ProviderFailed(AobError):
    """The provider could not give an answer; ``error_type`` is ``provider_error`` or ``circuit_open``."""

    code = "provider_failed"

    def __init__(self, message: str, *, error_type: str) -> None:
        super().__init__(message)
        self.error_type = error_type


@dataclass(frozen=True)
class ModelAccess:
    """Where one node's model is served, with which key and how hard to try; the key is a ``SecretStr`` so it never
    shows in a repr. ``max_call_tokens`` caps each reply (the provider's ``max_tokens``)."""

    base_url: str
    api_key: SecretStr
    model: str
    max_call_tokens: int
    max_retries: int = 4
    breaker_threshold: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0


@dataclass
class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures and stays open ``reset_after_s``; then lets one call try."""

    threshold: int
    reset_after_s: float = 30.0
    clock: Clock = time.monotonic
    failures: int = 0
    opened_at: float | None = None

    def state(self) -> Literal["closed", "open", "half_open"]:
        """``half_open`` once the open period has passed: the next call is a probe."""
        if self.opened_at is None:
            return "closed"
        return "open" if self.clock() - self.opened_at < self.reset_after_s else "half_open"

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold or self.opened_at is not None:
            # A failed half-open probe re-opens the breaker for a whole new period.
            self.opened_at = self.clock()


def backoff_delay_s(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): the server's ``Retry-After`` if given, else exponential
    backoff capped at ``max_s`` with up to 25% jitter taken off, so retrying clients spread out."""
    if retry_after_s is not None:
        return max(0.0, retry_after_s)
    delay = min(max_s, base_s * 2.0 ** (attempt - 1))
    return delay * (1 - 0.25 * jitter())


def retry_after_s(headers: Any, *, now: Clock = time.time) -> float | None:
    """The wait a response asks for, from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(raw).timestamp() - now()
    except (TypeError, ValueError):
        return None


def transient_failure(exc: BaseException) -> tuple[bool, float | None]:
    """Whether a provider error is worth retrying (429, 408, 409, 5xx, connection) and the wait it asked for."""
    if isinstance(exc, openai.APIStatusError):
        retryable = exc.status_code in _RETRYABLE_STATUSES or exc.status_code >= 500
        return retryable, retry_after_s(exc.response.headers)
    # Connection failures, timeouts and error events in the middle of a stream.
    return isinstance(exc, openai.APIError), None


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


class RetryingCaller:
    """Runs a provider call, retrying transient failures up to ``max_retries`` times; every failure feeds the
    breaker, and an open breaker fails the call at once with ``circuit_open``."""

    def __init__(
        self,
        *,
        max_retries: int,
        breaker: CircuitBreaker,
        base_s: float,
        max_s: float,
        writer: ProtocolWriter,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._max_retries = max_retries
        self._breaker = breaker
        self._base_s = base_s
        self._max_s = max_s
        self._writer = writer
        self._sleep = sleep

    async def call(self, attempt_call: Callable[[], Awaitable[T]]) -> T:
        """Return ``attempt_call()``'s result; raise ``ProviderFailed`` once retries run out or the breaker opens."""
        attempt = 0
        while True:
            if self._breaker.state() == "open":
                raise ProviderFailed(
                    f"circuit open after {self._breaker.failures} consecutive provider failures",
                    error_type="circuit_open",
                )
            attempt += 1
            try:
                result = await attempt_call()
            except openai.OpenAIError as exc:
                self._breaker.record_failure()
                retryable, wait_s = transient_failure(exc)
                reason = describe_failure(exc)
                if self._breaker.state() == "open":
                    raise ProviderFailed(
                        f"circuit open after {self._breaker.failures} consecutive provider failures (last: {reason})",
                        error_type="circuit_open",
                    ) from None
                if not retryable or attempt > self._max_retries:
                    tried = f"after {attempt} attempts" if retryable else "not retryable"
                    raise ProviderFailed(f"provider failed {tried}: {reason}", error_type="provider_error") from None
                delay = backoff_delay_s(attempt, base_s=self._base_s, max_s=self._max_s, retry_after_s=wait_s)
                self._writer.log(
                    "WARNING", "provider call failed; retrying", attempt=attempt, reason=reason, delay_s=round(delay, 3)
                )
                await self._sleep(delay)
                continue
            self._breaker.record_success()
            return result


@dataclass
class _CallSlot:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatModel:
    """Streams one chat completion per turn through the ``openai`` SDK (the SDK's own retries off: ours apply).

    Streamed text goes to ``writer`` as it arrives; ``drain`` is awaited after each chunk to pass it on (to the log).
    """

    def __init__(
        self,
        access: ModelAccess,
        writer: ProtocolWriter,
        *,
        drain: Callable[[], Awaitable[None]],
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._client: AsyncOpenAI | None = None
        self._access = access
        self._writer = writer
        self._drain = drain
        self._caller = RetryingCaller(
            max_retries=access.max_retries,
            breaker=CircuitBreaker(threshold=access.breaker_threshold),
            base_s=access.backoff_base_s,
            max_s=access.backoff_max_s,
            writer=writer,
            sleep=sleep,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    def _connected(self) -> AsyncOpenAI:
        # Made at the first call: an agent that never calls its model needs no key (an empty one fails here).
        if self._client is None:
            access = self._access
            self._client = AsyncOpenAI(
                base_url=access.base_url, api_key=access.api_key.get_secret_value(), max_retries=0
            )
        return self._client

    async def turn(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ModelReply:
        """The model's next reply to ``messages``; raises ``ProviderFailed`` when it cannot be had."""
        return await self._caller.call(lambda: self._stream(messages, tools))

    async def _stream(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ModelReply:
        # The SDK's TypedDict message types add nothing here: messages are built as plain dicts by the loop.
        request_messages: Any = list(messages)
        request_tools: Any = list(tools) if tools else openai.omit
        stream = await self._connected().chat.completions.create(
            model=self._access.model,
            messages=request_messages,
            tools=request_tools,
            max_tokens=self._access.max_call_tokens,
            stream=True,
            stream_options={"include_usage": True},
        )
        text: list[str] = []
        # The first words go out at once, later ones every WORDS_EVERY_S: the log shows the reply as it comes.
        words_at = -math.inf
        slots: dict[int, _CallSlot] = {}
        usage: Usage | None = None
        try:
            async for chunk in stream:
                if chunk.usage is not None:
                    usage = Usage(
                        prompt_tokens=chunk.usage.prompt_tokens,
                        completion_tokens=chunk.usage.completion_tokens,
                        total_tokens=chunk.usage.total_tokens,
                    )
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.content:
                        text.append(delta.content)
                        self._writer.text(delta.content)
                        if time.monotonic() - words_at >= WORDS_EVERY_S:
                            self._writer.words()
                            words_at = time.monotonic()
                        await self._drain()
                    for call in delta.tool_calls or ():
                        slot = slots.setdefault(call.index, _CallSlot())
                        slot.id = slot.id or call.id or ""
                        if call.function is not None:
                            slot.name = slot.name or call.function.name or ""
                            slot.arguments.append(call.function.arguments or "")
        finally:
            self._writer.end_text()
            await stream.close()
            await self._drain()
        calls = [
            ToolCall(id=slot.id or f"call_{index}", name=slot.name, arguments="".join(slot.arguments) or "{}")
            for index, slot in sorted(slots.items())
        ]
        return ModelReply(
            text="".join(text), tool_calls=calls, usage=usage or Usage(), usage_reported=usage is not None
        )
