"""The HTTP node against real local servers: outputs, methods, retries, limits, the allowlist."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from common.errors import NodeFailed
from tests.support.http_servers import (
    HandlerFactory,
    LocalServer,
    allow,
)


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
