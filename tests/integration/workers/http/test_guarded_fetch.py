"""Guarded fetches: redirects checked hop by hop, DNS answers pinned to the connection, TLS with SNI."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.errors import NodeFailed
from tests.support.http_servers import (
    PUBLIC_IP,
    HandlerFactory,
    LocalServer,
    RecordingBackend,
    ScriptedResolver,
    allow,
)


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
