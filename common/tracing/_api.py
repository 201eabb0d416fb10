"""What services use of tracing, with no OpenTelemetry import: the SDK-backed implementation is ``_sdk.SdkTracing``."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol

AttributeValue = str | bool | int | float


class SpanHandle(Protocol):
    """The span of a block: attributes and events go on it; ``fail`` marks it failed."""

    @property
    def traceparent(self) -> str:
        """The W3C ``traceparent`` of this span: what its children (runs, agent programs, requests) carry."""
        ...

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def add_event(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None: ...

    def fail(self, description: str, exc: BaseException | None = None) -> None:
        """Status ERROR with ``description``; ``exc`` also becomes an ``exception`` event."""
        ...


class Tracing(Protocol):
    """One process's tracer: spans are batched and exported over OTLP/HTTP in the background."""

    def span(
        self,
        name: str,
        *,
        parent: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        start_ms: float | None = None,
    ) -> AbstractContextManager[SpanHandle]:
        """A span around a block, current inside it: a child of ``parent`` (a traceparent) if given, else of the
        current span; ``start_ms`` backdates its start (epoch ms)."""
        ...

    def record(
        self,
        name: str,
        *,
        parent: str,
        start_ms: float,
        end_ms: float,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        """A finished span of ``parent``'s trace that covered ``start_ms``..``end_ms`` (epoch ms)."""
        ...

    def instrument_app(self, app: Any) -> None:
        """Give every request of a FastAPI ``app`` a server span (the parent of the runs it starts)."""
        ...

    async def relay(self, encoded: str, trace_id: str) -> int:
        """Export an agent program's spans (a base64 OTLP request from its protocol line), keeping only those of
        ``trace_id`` (hex); returns how many went."""
        ...

    def shutdown(self) -> None:
        """Export what is buffered and stop. Idempotent."""
        ...
