"""An httpx transport whose sockets can only go to addresses the SSRF guard checked for the request.

The URL keeps its host name, so TLS SNI, certificate checks, ``Host``/``:authority`` and connection pooling
all work as usual; only the TCP connect is redirected to the checked address, which is handed over through a
context variable for the duration of ``send``. A connect with no checked address is refused, so no code path
(proxies from the environment, a stray redirect) can reach the network unchecked, and there is no second DNS
lookup to rebind.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from contextvars import ContextVar
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpx

_pinned: ContextVar[Mapping[tuple[str, int], tuple[str, ...]] | None] = ContextVar("aob_http_pinned", default=None)

# Most specific first: the first match wins.
_ERROR_MAP: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def pinned_addresses(host: str, port: int, addresses: tuple[str, ...]) -> Iterator[None]:
    """Let connections to ``host:port`` opened in this context go to ``addresses`` (in order) and nowhere else."""
    token = _pinned.set({(host, port): addresses})
    try:
        yield
    finally:
        _pinned.reset(token)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the addresses pinned for the requested host and port."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = (_pinned.get() or {}).get((host, port))
        if not addresses:
            raise httpcore.ConnectError(f"refusing to connect to {host}:{port}: no checked address for it")
        # A host with several checked addresses is tried in order, as the system's own connect would.
        for address in addresses[:-1]:
            with contextlib.suppress(httpcore.ConnectError, httpcore.ConnectTimeout):
                return await self._connect(address, port, timeout, local_address, socket_options)
        return await self._connect(addresses[-1], port, timeout, local_address, socket_options)

    async def _connect(
        self,
        address: str,
        port: int,
        timeout_s: float | None,
        local_address: str | None,
        socket_options: Iterable[Any] | None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            address, port, timeout=timeout_s, local_address=local_address, socket_options=socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError(f"refusing to connect to unix socket {path}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 and HTTP/2 over one connection pool whose sockets go through a ``PinnedBackend``."""

    def __init__(self, *, network_backend: httpcore.AsyncNetworkBackend | None = None, max_connections: int = 100):
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=True,
            network_backend=PinnedBackend(network_backend),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            raise TypeError("PinnedTransport needs an async request body")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped_errors():
            core_response = await self._pool.handle_async_request(core_request)
        if not isinstance(core_response.stream, AsyncIterable):
            raise TypeError("httpcore returned a sync response stream to an async pool")
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        await self._stream.aclose()


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    """Raise httpx's exception types, as httpx's own transport does, so callers handle one family."""
    try:
        yield
    except Exception as exc:
        for core_type, httpx_type in _ERROR_MAP:
            if isinstance(exc, core_type):
                raise httpx_type(str(exc)) from exc
        raise


def create_http_client(
    *,
    max_connections: int = 100,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
    user_agent: str = "aob-http/0.1",
) -> httpx.AsyncClient:
    """A pooled client whose requests connect only where ``pinned_addresses`` says; no env proxies, no cookie jar.

    ``network_backend`` replaces the socket layer under the pinning (tests use it to observe connects).
    """
    return httpx.AsyncClient(
        transport=PinnedTransport(network_backend=network_backend, max_connections=max_connections),
        # Environment proxies would carry requests past the pinned connect; a shared cookie jar would leak
        # cookies between tenants' workflows.
        trust_env=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
        follow_redirects=False,
        headers={"user-agent": user_agent},
    )
