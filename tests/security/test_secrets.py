"""Issue 14, secrets: a write-only, tenant-scoped, encrypted secrets store; ``{{ secrets.NAME }}`` resolved only by
the worker that runs the HTTP node (never by templates, never from data); refused URLs never echo credentials."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from cryptography.fernet import Fernet

from common.errors import NodeFailed
from common.secrets import Keyring, SecretStore
from tests.support.api import Api, running_api
from tests.support.deployment import SECRETS_KEY, Deployment
from tests.support.http_servers import HandlerFactory, LocalServer, allow, make_handler, run_node, server
from workers.http import http_handler

__all__ = ["make_handler", "run_node", "server"]  # fixtures

VALUE = "sk-live-0123456789abcdefXYZ"


@contextlib.asynccontextmanager
async def stack(
    deployment: Deployment, redis: aioredis.Redis, pool: asyncpg.Pool, server: LocalServer | None = None
) -> AsyncIterator[Api]:
    """The API and the engine with an HTTP worker that reads the deployment's secrets store."""
    if server is not None:
        deployment = deployment.replace(http_allowlist=allow(server))
    worker = deployment.worker()
    secrets = SecretStore(pool, Keyring.from_settings(worker))
    async with (
        http_handler(worker, secrets=secrets) as handler,
        running_api(deployment, redis, pool, handlers=[handler]) as api,
    ):
        yield api


async def put(api: Api, name: str, value: str, key: dict[str, str] | None = None) -> Any:
    return await api.request("PUT", f"/api/v1/secrets/{name}", key=key, json={"value": value})


async def run_http(api: Api, node_config: dict[str, Any], inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    definition = {"nodes": [{"id": "call", "type": "http", "config": node_config}], "edges": []}
    workflow = await api.create_workflow(f"wf-{uuid.uuid4().hex[:8]}", definition)
    run = await api.start_run(workflow["id"], inputs)
    return await api.wait_run(run["id"])


async def node_error(api: Api, run_id: str) -> str:
    steps = (await api.request("GET", f"/api/v1/runs/{run_id}")).json()
    return str(steps)


async def test_secret_values_are_write_only_and_tenant_scoped(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with stack(deployment, redis, pg_pool) as api:
        created = await put(api, "API_KEY", VALUE)
        assert created.status_code == 201, created.text
        replaced = await put(api, "API_KEY", VALUE + "-2")
        assert replaced.status_code == 200
        posted = await api.request("POST", "/api/v1/secrets", json={"name": "OTHER", "value": VALUE})
        assert posted.status_code == 201, posted.text
        listed = await api.request("GET", "/api/v1/secrets")
        one = await api.request("GET", "/api/v1/secrets/API_KEY")
        assert [item["name"] for item in listed.json()["items"]] == ["API_KEY", "OTHER"]
        assert one.json()["name"] == "API_KEY"
        for response in (created, replaced, posted, listed, one):
            assert VALUE not in response.text

        editor = await api.new_key(role="editor")
        assert (await api.request("GET", "/api/v1/secrets", key=editor)).status_code == 200
        assert (await put(api, "API_KEY", "member-value-1", key=editor)).status_code == 403
        assert (await api.request("DELETE", "/api/v1/secrets/API_KEY", key=editor)).status_code == 403

        other = await api.new_key(tenant="other-tenant")
        assert (await api.request("GET", "/api/v1/secrets", key=other)).json()["items"] == []
        assert (await api.request("GET", "/api/v1/secrets/API_KEY", key=other)).status_code == 404
        assert (await api.request("DELETE", "/api/v1/secrets/API_KEY", key=other)).status_code == 404

        assert (await api.request("DELETE", "/api/v1/secrets/API_KEY")).status_code == 204
        assert (await api.request("GET", "/api/v1/secrets/API_KEY")).status_code == 404


BAD_REQUESTS = [
    ("/api/v1/secrets/1BAD", {"value": VALUE}, "path.name"),
    # NUL is refused for every route before routing, so the answer names the URL path rather than the parameter.
    ("/api/v1/secrets/A%00B", {"value": VALUE}, '"path":"path"'),
    ("/api/v1/secrets/SHORT", {"value": "abc"}, "body.value"),
    ("/api/v1/secrets/EXTRA", {"value": VALUE, "shown": True}, "body.shown"),
]


async def test_bad_secret_requests_get_a_4xx_naming_the_field(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with stack(deployment, redis, pg_pool) as api:
        for path, body, where in BAD_REQUESTS:
            response = await api.request("PUT", path, json=body)
            assert response.status_code == 422, response.text
            assert where in response.text and VALUE not in response.text


async def test_values_are_encrypted_at_rest_and_rotate(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with stack(deployment, redis, pg_pool) as api:
        assert (await put(api, "API_KEY", VALUE)).status_code == 201
    stored = await pg_pool.fetchval("SELECT ciphertext FROM secrets WHERE name = 'API_KEY'")
    assert VALUE not in stored
    assert Fernet(SECRETS_KEY.encode()).decrypt(stored.encode()).decode() == VALUE
    assert not [key async for key in redis.scan_iter(match=f"{deployment.key_prefix}*secret*")]

    new_key = Keyring.generate_key()
    rotated = deployment.replace(secrets_keys=f"{new_key},{SECRETS_KEY}")
    async with stack(rotated, redis, pg_pool) as api:
        response = await api.request("POST", "/api/v1/secrets/rotate")
        assert response.status_code == 200, response.text
        assert response.json()["rotated"] == 1
    stored = await pg_pool.fetchval("SELECT ciphertext FROM secrets WHERE name = 'API_KEY'")
    assert Fernet(new_key.encode()).decrypt(stored.encode()).decode() == VALUE
    assert await SecretStore(pg_pool, Keyring([new_key])).values("default", ["API_KEY"]) == {"API_KEY": VALUE}


async def test_http_node_gets_the_secret_and_its_output_does_not(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, server: LocalServer
) -> None:
    async with stack(deployment, redis, pg_pool, server) as api:
        await put(api, "API_KEY", VALUE)
        config = {
            "method": "POST",
            "url": server.url("/echo") + "?key={{ secrets.API_KEY }}",
            "headers": {"Authorization": "Bearer {{secrets.API_KEY}}"},
            "json": {"token": "{{ secrets.API_KEY }}", "n": 1},
        }
        run = await run_http(api, config)
        assert run["status"] == "succeeded", run
        shown = (await api.request("GET", f"/api/v1/runs/{run['id']}")).text
    assert server.hits == [f"/echo?key={VALUE}"]
    echo = run["outputs"]["call"]["body"]
    assert echo["headers"]["authorization"] == "Bearer [REDACTED]"
    assert echo["query"] == {"key": "[REDACTED]"}
    assert VALUE not in echo["body"] and VALUE not in shown


async def test_unknown_secret_fails_the_node_naming_it(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, server: LocalServer
) -> None:
    async with stack(deployment, redis, pg_pool, server) as api:
        run = await run_http(api, {"url": server.url("/echo"), "headers": {"X-Key": "{{ secrets.MISSING_KEY }}"}})
        detail = await node_error(api, run["id"])
    assert run["status"] == "failed"
    assert "unknown secret 'MISSING_KEY'" in detail
    assert server.hits == []


async def test_references_from_data_or_templates_never_resolve(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, server: LocalServer
) -> None:
    async with stack(deployment, redis, pg_pool, server) as api:
        await put(api, "API_KEY", VALUE)
        # A run input (or an upstream output) that spells a reference is data, not the author's reference.
        injected = await run_http(
            api, {"url": server.url("/echo") + "?q={{ inputs.q }}"}, {"q": "{{ secrets.API_KEY }}"}
        )
        assert injected["status"] == "succeeded", injected
        assert injected["outputs"]["call"]["body"]["query"] == {"q": "{{ secrets.API_KEY }}"}
        # Templates never see secrets, so no filter can transform one past redaction.
        filtered = await run_http(api, {"url": server.url("/echo") + "?q={{ secrets.API_KEY | reverse }}"})
        assert filtered["status"] == "failed"
        assert "'secrets' is undefined" in await node_error(api, filtered["id"])
    assert all(VALUE not in hit and VALUE[::-1] not in hit for hit in server.hits)


@pytest.mark.parametrize(
    "url",
    [
        "http://alice:pa55w0rd-x@169.254.169.254/latest?api_key=k3y-123456",
        "http://alice:pa55w0rd-x@127.0.0.1:1/x?api_key=k3y-123456",
        "ftp://alice:pa55w0rd-x@example.com/x?api_key=k3y-123456",
        # Templated URLs are only checked by the guard, at run time.
        "http://alice:pa55w0rd-x@[::1/{{x}}?api_key=k3y-123456",
        "file://alice:pa55w0rd-x@host/{{x}}?api_key=k3y-123456",
        "http://alice:pa55w0rd-x@{{x}}/?api_key=k3y-123456",
        "http://alice:pa55w0rd-x@example.com:99999/x?api_key=k3y-123456",
    ],
)
async def test_refused_urls_do_not_echo_credentials_or_query_values(
    make_handler: HandlerFactory, run_node: Any, url: str
) -> None:
    async with make_handler() as handler:
        with pytest.raises(NodeFailed) as caught:
            await run_node(handler, {"url": url})
    assert caught.value.error_type in {"ssrf_blocked", "invalid_config"}
    assert "pa55w0rd" not in caught.value.message
    assert "k3y-123456" not in caught.value.message


async def test_without_a_key_writes_are_refused_with_a_4xx(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with stack(deployment.replace(secrets_keys=""), redis, pg_pool) as api:
        refused = await put(api, "API_KEY", VALUE)
        posted = await api.request("POST", "/api/v1/secrets", json={"name": "API_KEY", "value": VALUE})
    assert (refused.status_code, posted.status_code) == (409, 409)
    assert "AOB_SECRETS_KEYS is not set" in refused.text and VALUE not in refused.text
