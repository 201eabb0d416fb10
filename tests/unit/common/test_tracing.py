"""Tracing off costs nothing (no SDK), on it names the right endpoint, relays only a node's own spans and stamps log
lines with the trace id."""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from common.agent_protocol import ProtocolWriter, classify_line
from common.logging import JsonFormatter
from common.settings import WorkerSettings
from common.tracing import TracingFields, start_program_tracing, start_tracing
from common.tracing._sdk import SdkTracing, relayed_request

REPO = Path(__file__).resolve().parents[3]


class Kept(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[object] = []

    def export(self, spans: object) -> SpanExportResult:
        self.spans.extend(spans)  # type: ignore[call-overload]
        return SpanExportResult.SUCCESS


def test_with_no_endpoint_no_service_loads_the_sdk_or_changes_logging() -> None:
    # A fresh interpreter: this test process has imported the SDK already.
    program = textwrap.dedent(
        """
        import logging, sys, threading
        factory = logging.getLogRecordFactory()
        from common.settings import ApiSettings, CoordinatorSettings, WorkerSettings
        from common.tracing import start_tracing
        from orchestrator import create_app
        import coordinator, workers, workers.agent, workers.http, workers.control, fanout
        assert start_tracing("aob-worker", WorkerSettings()) is None
        assert start_tracing("aob-coordinator", CoordinatorSettings()) is None
        create_app(ApiSettings())
        # redis-py imports the metrics SDK when it is installed; the tracing SDK, exporter and instrumentation
        # are aob's alone.
        ours = ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.instrumentation")
        print(sorted(name for name in sys.modules if name.startswith(ours)))
        print(logging.getLogRecordFactory() is factory, threading.active_count())
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", program], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # No SDK module of tracing, the log record factory untouched, no exporter thread.
    assert done.stdout.split("\n")[:2] == ["[]", "True 1"]


def test_the_traces_url_is_the_traces_endpoint_or_the_base_endpoint_with_v1_traces() -> None:
    assert TracingFields().traces_url is None
    assert TracingFields(OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318/").traces_url == "http://c:4318/v1/traces"
    both = TracingFields(OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://t/x")
    assert both.traces_url == "http://t/x"
    disabled = TracingFields(OTEL_EXPORTER_OTLP_ENDPOINT="http://c:4318", OTEL_SDK_DISABLED="true")
    assert disabled.traces_url is None and start_tracing("aob", disabled) is None


def test_settings_read_the_standard_variables_and_pass_the_agent_what_describes_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=a%20b,x=1")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    settings = WorkerSettings()
    assert settings.traces_url == "http://collector:4318/v1/traces"
    assert settings.export_headers() == {"api-key": "a b", "x": "1"}
    # The headers (credentials of the collector) stay with the worker, which exports for the program.
    assert settings.agent_environment() == {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test"}


def program_spans(traceparent: str) -> tuple[str, str]:
    """An agent program's spans line for a span under ``traceparent`` and one in a trace of its own."""
    lines: list[str] = []
    tracing = start_program_tracing(traceparent, lines.append)
    assert tracing is not None
    with tracing.span("aob.agent", parent=traceparent):
        pass
    with tracing.span("elsewhere", parent="00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"):
        pass
    tracing.shutdown()
    return lines[0], lines[1]


def test_a_program_may_only_add_spans_to_the_trace_of_its_node() -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    own, foreign = program_spans(f"00-{trace_id}-b7ad6b7169203331-01")
    kept = relayed_request(own, trace_id)
    assert kept is not None and kept[1] == 1
    assert relayed_request(foreign, trace_id) is None
    assert relayed_request("not base64!", trace_id) is None
    assert relayed_request(base64.b64encode(b"\xff\xff\xff").decode(), trace_id) is None


def test_spans_lines_are_their_own_kind_of_protocol_line() -> None:
    written: list[str] = []

    class Lines:
        def write(self, text: str) -> int:
            written.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    ProtocolWriter(Lines()).spans("AAAA")
    assert classify_line(written[0].rstrip("\n")) == "spans"


def test_log_records_made_inside_a_span_carry_its_trace_id() -> None:
    tracing = SdkTracing("aob-test", "http://127.0.0.1:9/v1/traces", exporter=Kept(), batch=False)
    logger = logging.getLogger("tests.tracing")
    outside = JsonFormatter().format(logger.makeRecord("t", logging.INFO, "f", 1, "outside", (), None))
    with tracing.span("work") as span:
        record = logger.makeRecord("t", logging.INFO, "f", 1, "inside", (), None)
    tracing.shutdown()
    line = json.loads(JsonFormatter().format(record))
    assert line["trace_id"] == span.traceparent.split("-")[1]
    assert "trace_id" not in json.loads(outside)
