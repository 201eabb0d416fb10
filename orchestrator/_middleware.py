"""Per-request bookkeeping: request metrics by route and status, and rate-limit headers on every answer."""

from __future__ import annotations

import time

from prometheus_client import Counter, Histogram
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.metrics import Metrics

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class RequestMetricsMiddleware:
    """Counts requests and their latency by route template and status; adds ``X-RateLimit-*`` headers."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.requests = metrics.counter(
            "aob_api_requests_total", "API requests by route and status", ["method", "route", "status"]
        )
        self.latency = metrics.histogram(
            "aob_api_request_seconds", "API request latency by route", ["method", "route"], buckets=_LATENCY_BUCKETS
        )
        # Each label set's metrics, looked up once (``labels`` takes a lock and builds a key every call).
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                rate_headers = scope.get("state", {}).get("rate_headers")
                if rate_headers:
                    headers = MutableHeaders(scope=message)
                    for name, value in rate_headers.items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            route = scope.get("route")
            # The route template, never the raw path, so ids do not explode the label set.
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            children = self._children.get((method, template, status))
            if children is None:
                children = (self.requests.labels(method, template, str(status)), self.latency.labels(method, template))
                self._children[(method, template, status)] = children
            children[0].inc()
            children[1].observe(time.perf_counter() - started)
