"""The OpenTelemetry SDK behind ``Tracing``: a tracer provider of its own per instance (no global one), a batch
processor exporting over OTLP/HTTP, W3C trace context, and ``trace_id`` on the log records of traced code."""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from common.tracing._api import AttributeValue

logger = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
_RELAY_TIMEOUT_S = 5.0


def service_resource(default_name: str) -> Resource:
    """The SDK's resource (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), named ``default_name`` unless
    the environment names it."""
    resource = Resource.create({})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: default_name}))
    return resource


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` header value naming ``span``."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier["traceparent"]


def parent_context(traceparent: str) -> Any:
    """The context whose current span is the remote one ``traceparent`` names (a malformed one: none)."""
    return _PROPAGATOR.extract({"traceparent": traceparent})


class _Span:
    """A ``SpanHandle`` over an SDK span."""

    def __init__(self, span: Span) -> None:
        self._span = span

    @property
    def traceparent(self) -> str:
        return traceparent_of(self._span)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        self._span.set_attribute(key, value)

    def add_event(self, name: str, attributes: Mapping[str, AttributeValue] | None = None) -> None:
        self._span.add_event(name, attributes)

    def fail(self, description: str, exc: BaseException | None = None) -> None:
        if exc is not None:
            self._span.record_exception(exc)
        self._span.set_status(Status(StatusCode.ERROR, description))


class SdkTracing:
    """``Tracing`` on the OpenTelemetry SDK, exporting to ``traces_url`` (or through ``exporter``, for tests)."""

    def __init__(
        self,
        service: str,
        traces_url: str,
        *,
        exporter: SpanExporter | None = None,
        relay_headers: Mapping[str, str] | None = None,
        batch: bool = True,
    ) -> None:
        self.provider = TracerProvider(resource=service_resource(service))
        # The exporter reads the other standard variables itself (headers, timeout, compression, TLS files).
        exporter = exporter or OTLPSpanExporter(endpoint=traces_url)
        # Unbatched, a span is exported in the thread that ends it (an agent program's stdout has one writer).
        self.provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
        self._tracer = self.provider.get_tracer("aob")
        self._traces_url = traces_url
        self._relay_headers = {"Content-Type": "application/x-protobuf", **(relay_headers or {})}
        self._closed = False
        stamp_trace_ids()

    @contextmanager
    def span(
        self,
        name: str,
        *,
        parent: str | None = None,
        attributes: Mapping[str, AttributeValue] | None = None,
        start_ms: float | None = None,
    ) -> Iterator[_Span]:
        context = parent_context(parent) if parent else None
        start_ns = int(start_ms * 1_000_000) if start_ms is not None else None
        with self._tracer.start_as_current_span(name, context=context, attributes=attributes, start_time=start_ns) as s:
            yield _Span(s)

    def record(
        self,
        name: str,
        *,
        parent: str,
        start_ms: float,
        end_ms: float,
        attributes: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        span = self._tracer.start_span(
            name, context=parent_context(parent), attributes=attributes, start_time=int(start_ms * 1_000_000)
        )
        span.end(end_time=int(end_ms * 1_000_000))

    def instrument_app(self, app: Any) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        # Probes and scrapes would be most of the traces and none of the interest.
        FastAPIInstrumentor.instrument_app(app, tracer_provider=self.provider, excluded_urls="healthz,readyz,metrics")

    async def relay(self, encoded: str, trace_id: str) -> int:
        body = relayed_request(encoded, trace_id)
        if body is None:
            return 0
        request, count = body
        try:
            async with httpx.AsyncClient(timeout=_RELAY_TIMEOUT_S, trust_env=False) as client:
                answer = await client.post(self._traces_url, content=request, headers=self._relay_headers)
            answer.raise_for_status()
        except httpx.HTTPError as exc:
            # Spans are best effort, as the SDK's own exporter treats them: the node goes on regardless.
            logger.warning("agent spans not exported to %s: %s", self._traces_url, exc)
            return 0
        return count

    def shutdown(self) -> None:
        if not self._closed:
            self._closed = True
            self.provider.shutdown()


def relayed_request(encoded: str, trace_id: str) -> tuple[bytes, int] | None:
    """An agent program's base64 OTLP request reduced to the spans of ``trace_id`` (hex), re-serialised, with
    their count; None when it is not such a request or holds no span of that trace."""
    try:
        request = ExportTraceServiceRequest.FromString(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError, DecodeError):
        logger.warning("agent spans line is not a base64 OTLP trace request: dropped")
        return None
    wanted = bytes.fromhex(trace_id)
    count = 0
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            # A program may only add to the trace of the node it runs for.
            kept = [span for span in scope_spans.spans if span.trace_id == wanted]
            del scope_spans.spans[:]
            scope_spans.spans.extend(kept)
            count += len(kept)
    return (request.SerializeToString(), count) if count else None


def stamp_trace_ids() -> None:
    """Give every log record made while a span is current ``trace_id`` and ``span_id`` fields (installed once)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "aob_trace_ids", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return record

    factory.aob_trace_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
