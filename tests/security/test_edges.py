"""The edges: readiness probes without internals, WebSocket/SSE auth and revocation, the UI's security headers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from common.redis_client import connect_redis
from common.settings import FanoutSettings
from fanout import create_fanout_app
from fanout._app import uvicorn_config
from orchestrator import create_app
from tests.support.api import Api, chain_definition, running_api, served_api
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.streaming import free_port, serving

DEAD_PASSWORD = "hunter2-do-not-echo"


def _fanout_settings(deployment: Deployment, **overrides: Any) -> FanoutSettings:
    return deployment.replace(fanout_port=0, reader_block_ms=200, **overrides).fanout()


@contextlib.asynccontextmanager
async def _fanout(settings: FanoutSettings, redis: aioredis.Redis, pool: asyncpg.Pool) -> AsyncIterator[str]:
    async with serving(uvicorn_config(create_fanout_app(settings, redis=redis, pool=pool), settings)) as port:
        yield f"ws://127.0.0.1:{port}"


def _assert_no_internals(text: str, port: int) -> None:
    for leak in (DEAD_PASSWORD, "127.0.0.1", str(port), "Error", "refused", "Traceback"):
        assert leak not in text, f"readiness answer leaks {leak!r}: {text}"


@contextlib.asynccontextmanager
async def _dead_redis() -> AsyncIterator[tuple[aioredis.Redis, int]]:
    port = free_port()
    dead = connect_redis(f"redis://:{DEAD_PASSWORD}@127.0.0.1:{port}/0")
    try:
        yield dead, port
    finally:
        await dead.aclose()


async def test_api_readyz_names_the_dependency_down_without_internals(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    app = create_app(deployment.api(), redis=redis, pool=pg_pool)
    async with (
        _dead_redis() as (dead, port),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aob") as client,
    ):
        # Redis went away after the start (the lifespan refuses to start without it).
        app.state.aob = dataclasses.replace(app.state.aob, redis=dead)
        response = await client.get("/readyz")
    assert response.status_code == 503
    _assert_no_internals(response.text, port)
    assert response.json()["error"]["details"] == {"redis": "down", "postgres": "ok"}


async def test_fanout_readyz_names_the_dependency_down_without_internals(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    app = create_fanout_app(_fanout_settings(deployment), redis=redis, pool=pg_pool)
    async with (
        _dead_redis() as (dead, port),
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fanout") as client,
    ):
        app.state.redis = dead
        response = await client.get("/readyz")
    assert response.status_code == 503
    _assert_no_internals(response.text, port)
    assert response.json() == {"status": "unavailable", "redis": "down", "postgres": "ok"}


async def _closed(ws: ClientConnection, timeout_s: float) -> tuple[int | None, str]:
    """The close code and reason the server sent, reading (and dropping) any events until then."""
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout_s):
            async for _ in ws:
                pass
    return ws.close_code, ws.close_reason or ""


async def test_fanout_refuses_a_key_in_the_url(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with _fanout(_fanout_settings(deployment), redis, pg_pool) as url:
        async with connect(f"{url}/ws/tenant?token={ADMIN_KEY}") as ws:
            code, reason = await _closed(ws, 5)
        assert code == 4401 and "URL" in reason
        bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with connect(f"{url}/ws/tenant?token={ADMIN_KEY}", additional_headers=bearer) as ws:
            assert (await _closed(ws, 5))[0] == 4401
        # The first message still authenticates.
        async with connect(f"{url}/ws/tenant") as ws:
            await ws.send(json.dumps({"token": ADMIN_KEY}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
            assert ws.close_code is None


async def _key(api: Api) -> tuple[str, str]:
    response = await api.request("POST", "/api/v1/api-keys", json={"name": f"k{uuid.uuid4().hex[:6]}"})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["key"]


async def test_revoking_a_key_closes_its_sockets(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with (
        running_api(deployment, redis, pg_pool, engine=False) as api,
        _fanout(_fanout_settings(deployment, key_recheck_s=60.0), redis, pg_pool) as url,
    ):
        key_id, raw = await _key(api)
        _, other = await _key(api)
        async with connect(f"{url}/ws/tenant") as revoked, connect(f"{url}/ws/tenant") as kept:
            await revoked.send(json.dumps({"token": raw}))
            await kept.send(json.dumps({"token": other}))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(revoked.recv(), 0.3)
            assert (await api.request("DELETE", f"/api/v1/api-keys/{key_id}")).status_code == 204
            # The revocation is published: the socket closes at once, long before the periodic re-check.
            code, reason = await _closed(revoked, 5)
            assert (code, reason) == (1008, "API key revoked")
            assert kept.close_code is None


async def test_a_key_revoked_behind_the_api_is_noticed_by_the_periodic_check(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        key_id, raw = await _key(api)
    async with (
        _fanout(_fanout_settings(deployment, key_recheck_s=0.2), redis, pg_pool) as url,
        connect(f"{url}/ws/tenant") as ws,
    ):
        await ws.send(json.dumps({"token": raw}))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        await pg_pool.execute("DELETE FROM api_keys WHERE id = $1", key_id)
        assert await _closed(ws, 5) == (1008, "API key revoked")


async def test_revoking_a_key_ends_its_event_streams(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    settings = deployment.api()
    async with running_api(deployment, redis, pg_pool, engine=False) as api:
        key_id, raw = await _key(api)
        await api.create_workflow("edges/sse", chain_definition(2))
        run_id = (await api.start_run("edges/sse"))["id"]  # no engine: the run never ends, its stream stays open
        async with served_api(settings, redis, pg_pool) as base, httpx.AsyncClient(base_url=base) as client:
            headers = {"Authorization": f"Bearer {raw}"}
            async with client.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                assert (await anext(lines)).startswith("retry:")
                assert (await api.request("DELETE", f"/api/v1/api-keys/{key_id}")).status_code == 204
                async with asyncio.timeout(5):
                    rest = [line async for line in lines]
            assert any('"revoked"' in line for line in rest), rest


def _ui_dist(tmp_path: Path) -> Path:
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text("<!doctype html><script type=module src=/assets/app.js></script>")
    (tmp_path / "assets" / "app.js").write_text("console.log('ui')")
    return tmp_path


async def test_ui_and_api_answers_carry_security_headers(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    configured = deployment.replace(ui_dist_dir=_ui_dist(tmp_path), fanout_host="0.0.0.0", fanout_port=8199)
    async with running_api(configured, redis, pg_pool, engine=False) as api:
        page = await api.client.get("/", headers={"Host": "aob.example:8080"})
        asset = await api.client.get("/assets/app.js")
        answer = await api.request("GET", "/api/v1/me")
        refused = await api.client.get("/api/v1/me")
    assert page.status_code == 200
    csp = {d.split()[0]: d.split()[1:] for d in page.headers["content-security-policy"].split(";") if d.strip()}
    assert csp["default-src"] == ["'self'"] and csp["frame-ancestors"] == ["'none'"]
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp.get("script-src", csp["default-src"])
    assert "ws://aob.example:8199" in csp["connect-src"] and "'self'" in csp["connect-src"]
    for response in (page, asset, answer, refused):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
