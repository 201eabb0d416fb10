"""SSE from the orchestrator: lossless resume with Last-Event-ID, JSON history from the archive, `aob runs watch`."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
import uvicorn

from common.events.archive import EventArchiver
from common.keys import Keys
from orchestrator import create_app
from orchestrator.cli.client import ClientConfig
from orchestrator.cli.follow import follow_run
from tests.support.api import Api
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.streaming import delay_chain, new_key, serving, sse_session


@contextlib.asynccontextmanager
async def live_api(
    deployment: Deployment, redis: aioredis.Redis, pool: asyncpg.Pool
) -> AsyncIterator[tuple[Api, Engine, str]]:
    """The orchestrator on a real port (SSE needs a real server), the engine, and the base URL."""
    app = create_app(deployment.api(), redis=redis, pool=pool)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws="none", lifespan="on", log_config=None)
    async with serving(config) as port, Engine(deployment, redis, pool=pool) as engine:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield Api(client, engine), engine, base


async def _start(api: Api, definition: dict[str, Any]) -> str:
    name = f"wf-{len(definition['nodes'])}-{id(definition)}"
    await api.create_workflow(name, definition)
    return str((await api.start_run(name))["id"])


async def test_sse_resumes_with_last_event_id_without_gap_or_duplicate(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with live_api(deployment, redis, pg_pool) as (api, engine, _):
        run_id = await _start(api, delay_chain(6, 0.1))
        events: list[dict[str, Any]] = []
        for _ in range(5):
            await sse_session(api.client, run_id, ADMIN_KEY, events, stop_after=2)
        await sse_session(api.client, run_id, ADMIN_KEY, events)
        history = await engine.events(run_id)
        assert [e["id"] for e in events] == [e["id"] for e in history]
        assert events == history
        assert events[-1]["type"] == "run_succeeded"

        # Each frame is exactly `id:` then one JSON `data:` line; the stream closes after the terminal event.
        response = await api.request("GET", f"/api/v1/runs/{run_id}/events", params={"after": history[-3]["id"]})
        frames = [f for f in response.text.split("\n\n") if f and not f.startswith(("retry:", ":"))]
        assert [f.split("\n")[0] for f in frames] == [f"id: {e['id']}" for e in history[-2:]]
        assert all(len(f.split("\n")) == 2 and f.split("\n")[1].startswith("data: {") for f in frames)


async def test_sse_refusals(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    async with live_api(deployment, redis, pg_pool) as (api, _, _):
        run_id = await _start(api, delay_chain(1, 0.01))
        stranger = {"Authorization": f"Bearer {await new_key(pg_pool, 'someone-else')}"}
        response = await api.request("GET", f"/api/v1/runs/{run_id}/events", key=stranger)
        assert response.status_code == 404
        response = await api.request("GET", f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": "x"})
        assert response.status_code == 400
        assert "Last-Event-ID" in response.json()["error"]["message"]


async def test_archiver_moves_ended_runs_to_postgres_and_history_stays_complete(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    keys = Keys(deployment.key_prefix)
    async with live_api(deployment, redis, pg_pool) as (api, engine, _):
        run_id = await _start(api, delay_chain(3, 0.01))
        await api.wait_run(run_id)
        history = await engine.events(run_id)
        archiver = EventArchiver(redis, pg_pool, keys, consumer="a1", block_ms=100)
        archiving = asyncio.create_task(archiver.run())
        try:

            async def archived() -> bool:
                stored = await pg_pool.fetchval("SELECT count(*) FROM run_events WHERE run_id = $1", run_id)
                return stored == len(history) and await redis.xlen(keys.events(run_id)) == 0

            await eventually(archived)
        finally:
            await archiver.shutdown()
            await archiving

        pages: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"format": "json", "limit": 4} | ({"after": cursor} if cursor else {})
            body = (await api.request("GET", f"/api/v1/runs/{run_id}/events", params=params)).json()
            pages.extend(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert pages == history
        events: list[dict[str, Any]] = []
        await sse_session(api.client, run_id, ADMIN_KEY, events)
        assert events == history


async def test_watch_prints_events_and_exits_by_outcome(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with live_api(deployment, redis, pg_pool) as (api, _, base):
        config = ClientConfig(base, ADMIN_KEY)
        run_id = await _start(api, delay_chain(2, 0.05))
        out = io.StringIO()
        assert await asyncio.to_thread(follow_run, config, run_id, out=out) == 0
        lines = out.getvalue().splitlines()
        assert "run started" in lines[0]
        assert any("node d1 succeeded in" in line for line in lines)
        assert "run succeeded in" in lines[-1]

        run_id = await _start(api, delay_chain(1, 30))
        out = io.StringIO()
        watching = asyncio.create_task(asyncio.to_thread(follow_run, config, run_id, out=out))
        await eventually(lambda: _printed(out, "run started"))
        assert (await api.request("POST", f"/api/v1/runs/{run_id}/cancel")).status_code in (200, 202)
        assert await watching == 1
        assert "run cancelled" in out.getvalue().splitlines()[-1]


async def _printed(out: io.StringIO, text: str) -> bool:
    return text in out.getvalue()
