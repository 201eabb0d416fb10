"""Local HTTP(S) servers, a scripted resolver and a recording socket layer for the HTTP node's tests."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.messages import Token
from common.settings import WorkerSettings
from common.workflow.ir import IrNode
from workers._handler import NodeContext
from workers.http import HttpHandler, http_handler

PUBLIC_IP = "93.184.216.34"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hits: list[str]
    release: threading.Event


class _Routes(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        self.server.hits.append(self.path)
        parts = urlsplit(self.path)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = parts.path
        if path == "/json":
            self._send(200, json.dumps({"items": [1, 2], "ok": True}).encode(), "application/json", {"X-Custom": "yes"})
        elif path == "/text":
            self._send(200, b"hello", "text/plain; charset=utf-8")
        elif path == "/echo":
            echo = {
                "method": self.command,
                "path": path,
                "query": query,
                "headers": {name.lower(): value for name, value in self.headers.items()},
                "body": body.decode(),
            }
            self._send(200, json.dumps(echo).encode(), "application/json")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status body", "text/plain")
        elif path == "/slow":
            self.server.release.wait(10)
            self._send(200, b"late", "text/plain")
        elif path == "/big":
            self._send(200, b"x" * int(query["n"]), "text/plain")
        elif path == "/big-chunked":
            self._send_chunked(b"x" * int(query["n"]))
        elif path == "/redirect":
            self._send(int(query.get("code", "302")), b"", "text/plain", {"Location": query["to"]})
        elif path == "/loop":
            self._send(302, b"", "text/plain", {"Location": "/loop"})
        else:
            self._send(200, b"should never be reached", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self._write(body)

    def _send_chunked(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(body), 1000):
            chunk = body[start : start + 1000]
            self._write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        self._write(b"0\r\n\r\n")

    def _write(self, data: bytes) -> None:
        # The client may hang up mid-body on purpose (size cap, timeout).
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class LocalServer:
    """A threaded HTTP(S) server on 127.0.0.1 with an ephemeral port; ``hits`` lists every request path."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self._server = _Server(("127.0.0.1", 0), _Routes)
        self._server.hits = []
        self._server.release = threading.Event()
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.scheme = "https" if tls else "http"
        # A short poll interval makes shutdown quick; it is not a wait for a condition.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def hits(self) -> list[str]:
        return self._server.hits

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def __enter__(self) -> LocalServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as running:
        yield running


class ScriptedResolver:
    """Answers each name from a list of answers, one per call (the last repeats), and records every call."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls.append(host)
        answers = self._answers[host]
        return answers[min(self.calls.count(host), len(answers)) - 1]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """The real socket layer, recording every connect; ``reroute`` sends a public test address to a local port."""

    def __init__(self, reroute: dict[str, str] | None = None) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._reroute = reroute or {}
        self.connects: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's backend interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connects.append((host, port))
        return await self._inner.connect_tcp(self._reroute.get(host, host), port, timeout=timeout)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


HandlerFactory = Callable[..., AbstractAsyncContextManager[HttpHandler]]


@pytest.fixture
def make_handler() -> HandlerFactory:
    @asynccontextmanager
    async def make(
        allowlist: str = "",
        resolver: ScriptedResolver | None = None,
        backend: httpcore.AsyncNetworkBackend | None = None,
        **settings: Any,
    ) -> AsyncIterator[HttpHandler]:
        worker_settings = WorkerSettings(http_allowlist=allowlist, **settings)
        async with http_handler(worker_settings, resolver=resolver, network_backend=backend) as handler:
            yield handler

    return make


@pytest.fixture
def run_node(redis: aioredis.Redis, keys: Keys) -> Callable[[HttpHandler, dict[str, Any]], Any]:
    async def run(handler: HttpHandler, config: dict[str, Any]) -> Any:
        token = Token(token_id="t1", run_id="r1", node_id="fetch", type="http", attempt=1, ir_version=1)
        ctx = NodeContext(
            token=token,
            node=IrNode(id="fetch", type="http", config=config),
            config=config,
            inputs={},
            upstream={},
            predecessors=[],
            tenant_id="tenant",
            started_by=None,
            redis=redis,
            keys=keys,
            worker_id="w1",
        )
        result = await handler(ctx)
        return result.output

    return run


def allow(server: LocalServer, host: str = "127.0.0.1") -> str:
    return f"{host}:{server.port}"
