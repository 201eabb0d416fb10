"""Prometheus metrics of one service, in a registry of its own so tests can build as many as they like."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase

_M = TypeVar("_M", bound=MetricWrapperBase)


class Metrics:
    """Create-or-return counters, histograms and gauges by name; ``render()`` gives the ``/metrics`` payload."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._metrics: dict[str, tuple[MetricWrapperBase, tuple[str, ...]]] = {}

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        """The counter ``name``, created on first use."""
        return self._get(Counter, name, labels, lambda: Counter(name, doc, labels, registry=self.registry))

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        """The gauge ``name``, created on first use."""
        return self._get(Gauge, name, labels, lambda: Gauge(name, doc, labels, registry=self.registry))

    def histogram(
        self, name: str, doc: str, labels: Sequence[str] = (), buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS
    ) -> Histogram:
        """The histogram ``name``, created on first use with ``buckets`` (seconds by default)."""
        return self._get(
            Histogram, name, labels, lambda: Histogram(name, doc, labels, registry=self.registry, buckets=buckets)
        )

    def render(self) -> tuple[bytes, str]:
        """The exposition payload and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _get(self, kind: type[_M], name: str, labels: Sequence[str], create: Callable[[], _M]) -> _M:
        existing = self._metrics.get(name)
        if existing is None:
            metric = create()
            self._metrics[name] = (metric, tuple(labels))
            return metric
        known, known_labels = existing
        if not isinstance(known, kind) or known_labels != tuple(labels):
            raise ValueError(
                f"metric {name!r} is already a {type(known).__name__} with labels {list(known_labels)},"
                f" requested a {kind.__name__} with labels {list(labels)}"
            )
        return known
