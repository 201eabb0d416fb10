"""OpenTelemetry traces of runs, off unless an OTLP endpoint is set. With it off nothing imports the OTel SDK and
callers hold ``None`` instead of a ``Tracing``, so the hot paths pay one ``is None`` test (docs/observability.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

from common.tracing._api import AttributeValue, SpanHandle, Tracing
from common.tracing._settings import TracingFields

__all__ = [
    "AttributeValue",
    "SpanHandle",
    "Tracing",
    "TracingFields",
    "start_program_tracing",
    "start_tracing",
    "traced",
]

logger = logging.getLogger(__name__)


def start_tracing(service: str, fields: TracingFields) -> Tracing | None:
    """A ``Tracing`` exporting spans as ``service`` (unless ``OTEL_SERVICE_NAME`` names it), or None when off."""
    url = fields.traces_url
    if url is None:
        return None
    # Imported only here: a process with tracing off never loads the SDK.
    from common.tracing._sdk import SdkTracing

    return SdkTracing(service, url, relay_headers=fields.export_headers())


def start_program_tracing(traceparent: str | None, write: Callable[[str], None]) -> Tracing | None:
    """An agent program's ``Tracing``: its spans go to ``write`` as base64 OTLP requests (for its worker to export);
    None when it was given no ``traceparent`` or its image lacks the SDK."""
    if traceparent is None:
        return None
    try:
        from common.tracing._program import LineSpanExporter
        from common.tracing._sdk import SdkTracing
    except ImportError as exc:
        logger.warning("TRACEPARENT given but the OpenTelemetry SDK is not installed here: no spans (%s)", exc)
        return None
    return SdkTracing("aob-agent", "", exporter=LineSpanExporter(write), batch=False)


def traced(
    tracing: Tracing | None,
    name: str,
    *,
    parent: str | None = None,
    attributes: dict[str, AttributeValue] | None = None,
) -> AbstractContextManager[SpanHandle | None]:
    """``tracing.span(...)``, or a block that yields None when tracing is off (for code off the hot path)."""
    if tracing is None:
        return nullcontext()
    return tracing.span(name, parent=parent, attributes=attributes)
