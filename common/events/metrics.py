"""Streaming metrics, shared by the WebSocket fanout and the orchestrator's SSE route."""

from __future__ import annotations

import time
from collections.abc import Sequence

from common.events.frames import WireEvent
from common.metrics import Metrics

_LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class StreamMetrics:
    """Connected clients, events sent, resyncs and fan-out latency, labelled by transport (ws or sse)."""

    def __init__(self, metrics: Metrics, transport: str) -> None:
        self.transport = transport
        self.clients = metrics.gauge("aob_stream_clients", "connected streaming clients", ["transport"]).labels(
            transport
        )
        self.sent = metrics.counter("aob_stream_events_sent", "events written to clients", ["transport"]).labels(
            transport
        )
        self.resyncs = metrics.counter(
            "aob_stream_resyncs", "clients closed with a resync for falling behind", ["transport"]
        ).labels(transport)
        self.latency = metrics.histogram(
            "aob_stream_fanout_latency_seconds",
            "time from an event's append to its frame written to a client (live events only)",
            ["transport"],
            buckets=_LATENCY_BUCKETS_S,
        ).labels(transport)

    def delivered_all(self, events: Sequence[WireEvent], live: bool) -> None:
        """Count frames written together; live events also record their latency."""
        self.sent.inc(len(events))
        if live:
            now_ms = time.time() * 1000
            for event in events:
                self.latency.observe(max(0.0, (now_ms - event.ts) / 1000))

    def delivered(self, event: WireEvent, live: bool) -> None:
        """Count one frame written; live events also record their latency."""
        self.sent.inc()
        if live:
            self.latency.observe(max(0.0, time.time() - event.ts / 1000))
