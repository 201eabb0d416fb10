"""The ``http`` node type: an SSRF-guarded HTTP client and the handler the worker runtime calls."""

from workers.http._fetcher import FetchedResponse, HttpFetcher
from workers.http._handler import HttpHandler, http_handler
from workers.http._ssrf import CheckedTarget, Resolver, SsrfBlocked, SsrfGuard, normalise_path, resolve_host
from workers.http._transport import create_http_client

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
