"""The ``http`` node type: an SSRF-guarded HTTP client and the handler the worker runtime calls."""

from common.pinned_http import create_http_client
from workers.http._fetcher import FetchedResponse, HttpFetcher
from workers.http._handler import HttpHandler, http_handler
from workers.http._ssrf import CheckedTarget, Resolver, SsrfBlocked, SsrfGuard, normalise_path, resolve_host

__all__ = [
    "CheckedTarget",
    "FetchedResponse",
    "HttpFetcher",
    "HttpHandler",
    "Resolver",
    "SsrfBlocked",
    "SsrfGuard",
    "create_http_client",
    "http_handler",
    "normalise_path",
    "resolve_host",
]
