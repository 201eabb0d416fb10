"""The http node against real servers on 127.0.0.1: output, failures, caps, and the SSRF guard on every hop."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest
import redis.asyncio as aioredis

from common.errors import NodeFailed
from common.ir import IrNode
from common.keys import Keys
from common.messages import Token
from workers._handler import NodeContext
from workers.http import HttpHandler, HttpWorkerSettings, http_handler

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
        worker_settings = HttpWorkerSettings(http_allowlist=allowlist, **settings)
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


async def test_json_response_is_mapped_to_output(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    async with make_handler(allow(server)) as handler:
        output = await run_node(handler, {"url": server.url("/json")})
    assert output["status"] == 200
    assert output["body"] == {"items": [1, 2], "ok": True}
    assert output["headers"]["content-type"] == "application/json"
    assert output["headers"]["x-custom"] == "yes"
    assert all(name == name.lower() for name in output["headers"])


async def test_text_response_stays_text(server: LocalServer, make_handler: HandlerFactory, run_node: Any) -> None:
    async with make_handler(allow(server)) as handler:
        output = await run_node(handler, {"url": server.url("/text")})
    assert output["body"] == "hello"


async def test_method_headers_query_and_json_body_are_sent(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    config = {
        "method": "POST",
        "url": server.url("/echo?fixed=1"),
        "headers": {"X-Trace": "abc"},
        "query": {"city": "Paris", "limit": 3, "exact": True},
        "json": {"a": [1, 2]},
    }
    async with make_handler(allow(server)) as handler:
        echo = (await run_node(handler, config))["body"]
    assert echo["method"] == "POST"
    assert echo["query"] == {"fixed": "1", "city": "Paris", "limit": "3", "exact": "true"}
    assert echo["headers"]["x-trace"] == "abc"
    assert echo["headers"]["host"] == f"127.0.0.1:{server.port}"
    assert echo["headers"]["content-type"] == "application/json"
    assert json.loads(echo["body"]) == {"a": [1, 2]}


async def test_503_fails_retryably(server: LocalServer, make_handler: HandlerFactory, run_node: Any) -> None:
    async with make_handler(allow(server)) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/status/503"), "expected_status": [200]})
    assert caught.value.message.startswith("status 503 not in [200]")
    assert (caught.value.retryable, caught.value.error_type) == (True, "http_status")


async def test_4xx_is_final_unless_retry_on_4xx(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    async with make_handler(allow(server)) as handler:
        with pytest.raises(NodeFailed) as final:
            await run_node(handler, {"url": server.url("/status/404")})
        with pytest.raises(NodeFailed) as retried:
            await run_node(handler, {"url": server.url("/status/429"), "retry_on_4xx": True})
        accepted = await run_node(handler, {"url": server.url("/status/404"), "expected_status": [404]})
    assert final.value.message.startswith("status 404 not in 2xx")
    assert final.value.retryable is False
    assert retried.value.retryable is True
    assert accepted["status"] == 404


async def test_timeout_fails_retryably(server: LocalServer, make_handler: HandlerFactory, run_node: Any) -> None:
    async with make_handler(allow(server)) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/slow"), "timeout_s": 0.3})
    assert caught.value.message.startswith("timeout after 0.3s")
    assert (caught.value.retryable, caught.value.error_type) == (True, "timeout")


@pytest.mark.parametrize("path", ["/big?n=5000", "/big-chunked?n=5000"])
async def test_oversized_body_is_refused(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any, path: str
) -> None:
    async with make_handler(allow(server)) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url(path), "max_response_bytes": 1000})
        fits = await run_node(handler, {"url": server.url(path.replace("5000", "1000")), "max_response_bytes": 1000})
    assert caught.value.message.startswith("response body exceeds 1000 bytes")
    assert (caught.value.retryable, caught.value.error_type) == (False, "response_too_large")
    assert len(fits["body"]) == 1000


async def test_process_cap_bounds_the_node_cap(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    async with make_handler(allow(server), http_max_response_bytes=2000) as handler:
        with pytest.raises(NodeFailed, match="response body exceeds 2000 bytes"):
            await run_node(handler, {"url": server.url("/big?n=5000"), "max_response_bytes": 1_000_000})


async def test_loopback_server_needs_the_allowlist(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    async with make_handler() as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/json")})
    assert caught.value.message == "blocked: 127.0.0.1 is a loopback address"
    assert (caught.value.retryable, caught.value.error_type) == (False, "ssrf_blocked")
    assert server.hits == []
    async with make_handler(allow(server)) as handler:
        assert (await run_node(handler, {"url": server.url("/json")}))["status"] == 200


async def test_connection_refused_fails_retryably(make_handler: HandlerFactory, run_node: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with make_handler(f"127.0.0.1:{port}") as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": f"http://127.0.0.1:{port}/"})
    assert caught.value.message.startswith("connection failed")
    assert (caught.value.retryable, caught.value.error_type) == (True, "connection_error")


async def test_redirects_are_followed_with_browser_method_rules(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    async with make_handler(allow(server)) as handler:
        followed = await run_node(handler, {"url": server.url("/redirect?to=/json")})
        see_other = await run_node(
            handler, {"method": "POST", "url": server.url("/redirect?to=/echo&code=303"), "json": {"a": 1}}
        )
        kept = await run_node(
            handler, {"method": "POST", "url": server.url("/redirect?to=/echo&code=307"), "json": {"a": 1}}
        )
        unfollowed = await run_node(
            handler, {"url": server.url("/redirect?to=/json"), "follow_redirects": False, "expected_status": [302]}
        )
    assert followed["body"] == {"items": [1, 2], "ok": True}
    assert (see_other["body"]["method"], see_other["body"]["body"]) == ("GET", "")
    assert (kept["body"]["method"], json.loads(kept["body"]["body"])) == ("POST", {"a": 1})
    assert (unfollowed["status"], unfollowed["headers"]["location"]) == (302, "/json")


async def test_redirect_loop_stops_after_max_hops(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    async with make_handler(allow(server)) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/loop")})
    assert caught.value.message.startswith("too many redirects: more than 5")
    assert server.hits == ["/loop"] * 6


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("http://10.0.0.1/", "blocked: 10.0.0.1 is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "blocked: 169.254.169.254 is a cloud metadata address"),
        ("http://0x7f000001:80/", "blocked: 127.0.0.1 is a loopback address"),
        ("gopher://127.0.0.1/", "blocked: scheme 'gopher' is not allowed"),
        ("/admin", "blocked: path '/admin' is deny-listed"),
        ("/x/..%2F%61dmin/", "blocked: path '/admin' is deny-listed"),
    ],
)
async def test_redirect_hop_is_checked(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any, target: str, reason: str
) -> None:
    async with make_handler(allow(server)) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/redirect"), "query": {"to": target}})
    assert caught.value.message.startswith(reason)
    assert caught.value.error_type == "ssrf_blocked"
    assert len(server.hits) == 1  # only the redirecting request reached a server


async def test_cross_origin_redirect_drops_credentials(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    resolver = ScriptedResolver({"other.test": [["127.0.0.1"]]})
    allowlist = f"{allow(server)},{allow(server, 'other.test')}"
    config = {
        "url": server.url("/redirect"),
        "query": {"to": server.url("/echo", host="other.test")},
        "headers": {"Authorization": "Bearer secret", "X-Keep": "1"},
    }
    async with make_handler(allowlist, resolver=resolver) as handler:
        echo = (await run_node(handler, config))["body"]
    assert echo["headers"]["host"] == f"other.test:{server.port}"
    assert "authorization" not in echo["headers"]
    assert echo["headers"]["x-keep"] == "1"


async def test_name_resolving_to_a_private_address_is_refused(make_handler: HandlerFactory, run_node: Any) -> None:
    resolver = ScriptedResolver({"evil.example": [["93.184.216.34", "10.0.0.1"]]})
    backend = RecordingBackend()
    async with make_handler(resolver=resolver, backend=backend) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": "http://evil.example/"})
    assert caught.value.message == "blocked: 10.0.0.1 is a private address (resolved from evil.example)"
    assert backend.connects == []


async def test_connection_goes_to_the_checked_address_only(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    # DNS rebinding: the first answer is public, every later one is loopback. The request must use the first.
    resolver = ScriptedResolver({"rebind.example": [[PUBLIC_IP], ["127.0.0.1"]]})
    backend = RecordingBackend(reroute={PUBLIC_IP: "127.0.0.1"})
    async with make_handler(resolver=resolver, backend=backend) as handler:
        output = await run_node(handler, {"url": server.url("/echo", host="rebind.example")})
    assert output["body"]["headers"]["host"] == f"rebind.example:{server.port}"
    assert resolver.calls == ["rebind.example"]
    assert backend.connects == [(PUBLIC_IP, server.port)]


async def test_rebinding_between_hops_is_caught_at_the_hop(
    server: LocalServer, make_handler: HandlerFactory, run_node: Any
) -> None:
    resolver = ScriptedResolver({"rebind.example": [[PUBLIC_IP], ["127.0.0.1"]]})
    backend = RecordingBackend(reroute={PUBLIC_IP: "127.0.0.1"})
    async with make_handler(resolver=resolver, backend=backend) as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/redirect?to=/json", host="rebind.example")})
    assert caught.value.message == "blocked: 127.0.0.1 is a loopback address (resolved from rebind.example)"
    assert resolver.calls == ["rebind.example", "rebind.example"]  # once per hop
    assert backend.connects == [(PUBLIC_IP, server.port)]
    assert server.hits == ["/redirect?to=/json"]


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LocalServer, Path, list[str]]]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make the test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=secure.test",
            "-addext",
            "subjectAltName=DNS:secure.test",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server_names: list[str] = []
    context.sni_callback = lambda _sock, name, _ctx: server_names.append(name or "")
    with LocalServer(tls=context) as running:
        yield running, cert, server_names


async def test_https_to_a_pinned_address_keeps_sni_and_certificate_checks(
    tls_server: tuple[LocalServer, Path, list[str]],
    make_handler: HandlerFactory,
    run_node: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, cert, server_names = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    resolver = ScriptedResolver({"secure.test": [["127.0.0.1"]], "wrong.test": [["127.0.0.1"]]})
    allowlist = f"{allow(server, 'secure.test')},{allow(server, 'wrong.test')}"
    async with make_handler(allowlist, resolver=resolver) as handler:
        output = await run_node(handler, {"url": server.url("/json", host="secure.test")})
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": server.url("/json", host="wrong.test")})
    assert output["body"] == {"items": [1, 2], "ok": True}
    assert server_names[0] == "secure.test"
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.message
    assert server.hits == ["/json"]
