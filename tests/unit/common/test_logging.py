"""Structured logging (JSON lines with context ids and extra fields, readable text) and the metrics helper."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from common.logging import JsonFormatter, TextFormatter, configure_logging, log_context, node_id_var, run_id_var
from common.metrics import Metrics


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("aob.test.logging")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def test_json_line_carries_context_ids_and_extra(captured: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    with log_context(run_id="r-1", node_id="fetch"):
        logger.info("node %s done", "fetch", extra={"duration_ms": 12.5, "outcome": "succeeded"})
    logger.warning("outside")

    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["msg"] == "node fetch done"
    assert first["level"] == "INFO"
    assert first["logger"] == "aob.test.logging"
    assert first["run_id"] == "r-1"
    assert first["node_id"] == "fetch"
    assert "token_id" not in first
    assert first["duration_ms"] == 12.5
    assert first["outcome"] == "succeeded"
    assert first["ts"].endswith("+00:00")
    assert "run_id" not in second
    assert "node_id" not in second


def test_json_line_includes_the_exception(captured: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    record = json.loads(stream.getvalue())
    assert record["msg"] == "failed"
    assert "ValueError: boom" in record["exc"]


def test_text_line_is_readable(captured: tuple[logging.Logger, io.StringIO, logging.Handler]) -> None:
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    with log_context(run_id="r-2", token_id="t-9"):
        logger.info("claimed", extra={"attempt": 2})
    line = stream.getvalue().strip()
    assert "INFO" in line
    assert "aob.test.logging: claimed" in line
    assert "run_id=r-2 token_id=t-9 attempt=2" in line


def test_log_context_nests_and_resets() -> None:
    with log_context(run_id="outer"):
        with log_context(node_id="n1"):
            assert (run_id_var.get(), node_id_var.get()) == ("outer", "n1")
        with log_context(run_id="inner"):
            assert run_id_var.get() == "inner"
        assert (run_id_var.get(), node_id_var.get()) == ("outer", None)
    assert run_id_var.get() is None


def test_configure_logging_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    before, level = list(root.handlers), root.level
    try:
        configure_logging("debug", json=True)
        configure_logging("WARNING", json=False)
        added = [handler for handler in root.handlers if handler not in before]
        assert len(added) == 1
        assert isinstance(added[0].formatter, TextFormatter)
        assert root.level == logging.WARNING
        assert all(handler in root.handlers for handler in before)
    finally:
        for handler in root.handlers[:]:
            if handler not in before:
                root.removeHandler(handler)
        root.setLevel(level)


def test_metrics_create_or_return_and_render() -> None:
    metrics = Metrics()
    counter = metrics.counter("aob_test_events_total", "events", ["kind"])
    assert metrics.counter("aob_test_events_total", "events", ["kind"]) is counter
    counter.labels(kind="a").inc(2)
    metrics.histogram("aob_test_seconds", "durations", buckets=(0.1, 1.0)).observe(0.5)
    metrics.gauge("aob_test_in_flight", "in flight").set(3)

    payload, content_type = metrics.render()
    text = payload.decode()
    assert 'aob_test_events_total{kind="a"} 2.0' in text
    assert 'aob_test_seconds_bucket{le="1.0"} 1.0' in text
    assert "aob_test_in_flight 3.0" in text
    assert content_type.startswith("text/plain")
    assert "aob_test_events_total" not in Metrics().render()[0].decode()


def test_metrics_refuse_a_name_reused_with_another_shape() -> None:
    metrics = Metrics()
    metrics.counter("aob_test_total", "x", ["a"])
    with pytest.raises(ValueError, match=r"already a Counter with labels \['a'\], requested a Gauge"):
        metrics.gauge("aob_test_total", "x", ["a"])
    with pytest.raises(ValueError, match="requested a Counter with labels"):
        metrics.counter("aob_test_total", "x", ["b"])
