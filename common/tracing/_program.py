"""Tracing inside an agent program: it has no network, so its finished spans leave as protocol lines on stdout and
its worker exports them (``Tracing.relay``). Imported only when the program was given a ``TRACEPARENT``."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult


class LineSpanExporter(SpanExporter):
    """Encodes finished spans as one OTLP/protobuf export request, base64, and hands it to ``write``."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._write(base64.b64encode(encode_spans(spans).SerializeToString()).decode("ascii"))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        """Nothing to release: the writer belongs to the program."""
