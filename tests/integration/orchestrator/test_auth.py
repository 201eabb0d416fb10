"""Auth, tenants, the error shape, body limits, rate limits and ops endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    settings = deployment.replace(
        max_body_bytes=4096,
        rate_key_per_min=40,
        rate_runs_no_agents_per_min=3,
        max_active_runs_per_tenant=100,
    )
    async with running_api(settings, redis, pg_pool, engine=False) as client:
        yield client


async def test_missing_bad_and_revoked_keys_are_401(api: Api) -> None:
    assert (await api.client.get("/api/v1/me")).status_code == 401
    bad = await api.request("GET", "/api/v1/me", key={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    key = await api.new_key(name="temp")
    me = (await api.request("GET", "/api/v1/me", key=key)).json()
    assert me["name"] == "temp" and me["tenant_id"] == "default" and me["role"] == "admin"
    assert (await api.request("DELETE", f"/api/v1/api-keys/{me['key_id']}")).status_code == 204
    assert (await api.request("GET", "/api/v1/me", key=key)).status_code == 401
    assert (await api.request("DELETE", f"/api/v1/api-keys/{me['key_id']}")).status_code == 404


async def test_members_cannot_manage_keys(api: Api) -> None:
    editor = await api.new_key(role="editor")
    assert (await api.request("GET", "/api/v1/me", key=editor)).json()["role"] == "editor"
    for method, path, body in (
        ("GET", "/api/v1/api-keys", None),
        ("POST", "/api/v1/api-keys", {"name": "x"}),
        ("DELETE", "/api/v1/api-keys/whatever", None),
    ):
        response = await api.request(method, path, key=editor, json=body)
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["code"] == "forbidden"


async def test_only_bootstrap_admin_creates_keys_in_other_tenants(api: Api) -> None:
    tenant_admin = await api.new_key(tenant="acme")
    assert (await api.request("GET", "/api/v1/me", key=tenant_admin)).json()["tenant_id"] == "acme"
    refused = await api.request("POST", "/api/v1/api-keys", key=tenant_admin, json={"name": "x", "tenant": "evil"})
    assert refused.status_code == 403
    own = await api.request("POST", "/api/v1/api-keys", key=tenant_admin, json={"name": "x", "role": "editor"})
    assert own.status_code == 201 and own.json()["tenant_id"] == "acme" and own.json()["key"].startswith("aob_")
    listed = (await api.request("GET", "/api/v1/api-keys", key=tenant_admin)).json()["items"]
    assert {k["tenant_id"] for k in listed} == {"acme"} and all("key" not in k for k in listed)


async def test_errors_have_one_shape(api: Api) -> None:
    unknown_field = await api.request("POST", "/api/v1/workflows", json={"name": "w", "definition": {}, "colour": 1})
    assert unknown_field.status_code == 422
    error = unknown_field.json()["error"]
    assert error["code"] == "validation_failed" and "body.colour: unknown field" in error["message"]
    assert {"path": "body.colour", "message": "unknown field"} in error["details"]
    not_json = await api.request(
        "POST", "/api/v1/workflows", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and "error" in not_json.json()
    missing_route = await api.request("GET", "/api/v1/nothing-here")
    assert missing_route.status_code == 404 and missing_route.json()["error"]["code"] == "not_found"
    wrong_method = await api.request("PUT", "/api/v1/runs")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


async def test_bodies_over_the_limit_are_413(api: Api) -> None:
    big = {"name": "w", "definition": {"nodes": [{"id": "a", "type": "noop", "description": "x" * 5000}]}}
    response = await api.request("POST", "/api/v1/workflows", json=big)
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 1000

    streamed = await api.request("POST", "/api/v1/workflows", content=chunks())
    assert streamed.status_code == 413


async def test_run_submissions_hit_the_tier_limit_with_headers(api: Api) -> None:
    await api.create_workflow("w", chain_definition(1))
    codes = []
    for _ in range(4):
        response = await api.request("POST", "/api/v1/runs", json={"workflow_id": "w"})
        codes.append(response.status_code)
    assert codes == [201, 201, 201, 429]
    assert response.json()["error"]["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["X-RateLimit-Limit"] == "3" and response.headers["X-RateLimit-Remaining"] == "0"
    assert int(response.headers["X-RateLimit-Reset"]) >= 1
    # Another key has its own submission budget.
    other = await api.new_key()
    assert (await api.request("POST", "/api/v1/runs", key=other, json={"workflow_id": "w"})).status_code == 201


async def test_per_key_request_limit_and_headers_on_success(api: Api) -> None:
    key = await api.new_key()
    first = await api.request("GET", "/api/v1/me", key=key)
    assert first.headers["X-RateLimit-Limit"] == "40" and first.headers["X-RateLimit-Remaining"] == "39"
    for _ in range(39):
        await api.request("GET", "/api/v1/me", key=key)
    limited = await api.request("GET", "/api/v1/me", key=key)
    assert limited.status_code == 429 and "per API key" in limited.json()["error"]["message"]
    assert (await api.request("GET", "/api/v1/me")).status_code == 200


async def test_ops_endpoints(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}
    await api.request("GET", "/api/v1/me", key={"Authorization": "Bearer wrong"})
    text = (await api.client.get("/metrics")).text
    assert 'aob_api_requests_total{method="GET",route="/api/v1/me",status="401"} 1.0' in text
    assert "aob_api_request_seconds_bucket" in text
    assert 'aob_queue_depth{type="http"} 0.0' in text
