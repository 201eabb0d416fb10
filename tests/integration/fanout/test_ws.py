"""WebSocket fanout: complete, ordered, exactly-once delivery across reconnects and processes; backpressure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from common.events.archive import EventArchiver
from common.keys import Keys
from common.settings import FanoutSettings
from fanout import create_fanout_app
from fanout._app import uvicorn_config
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.streaming import RawWsClient, WsWatcher, delay_chain, new_key, serving, submit_as

TENANT = "tenant-test"  # the tenant of the test engine's runs


def fanout_test_settings(deployment: Deployment, **overrides: Any) -> FanoutSettings:
    return deployment.replace(fanout_port=0, reader_block_ms=500, **overrides).fanout()


@contextlib.asynccontextmanager
async def fanout_server(settings: FanoutSettings, redis: aioredis.Redis, pool: asyncpg.Pool) -> AsyncIterator[str]:
    app = create_fanout_app(settings, redis=redis, pool=pool)
    async with serving(uvicorn_config(app, settings)) as port:
        yield f"ws://127.0.0.1:{port}"


async def metric(url: str, name: str) -> float:
    """The value of ``name{transport="ws"}`` on the fanout at ``url``."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{url.replace('ws://', 'http://')}/metrics")).text
    line = next(ln for ln in text.splitlines() if ln.startswith(f'{name}{{transport="ws"}}'))
    return float(line.split()[-1])


def assert_complete(watcher: WsWatcher, expected: list[dict[str, Any]]) -> None:
    """Every event exactly once, in order (by id), and equal to what the run's stream holds."""
    got = [e["id"] for e in watcher.events]
    want = [e["id"] for e in expected]
    assert got == want, f"run {watcher.run_id}: got {len(got)} events {got[:3]}..., expected {len(want)}"
    assert watcher.events == expected


async def test_before_start_after_end_and_archived(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    key = await new_key(pg_pool, TENANT)
    async with (
        fanout_server(fanout_test_settings(deployment), redis, pg_pool) as url,
        Engine(deployment, redis) as engine,
    ):
        run_id = uuid.uuid4().hex
        early = WsWatcher([url], run_id, key)
        following = asyncio.create_task(early.follow())
        await eventually(lambda: _at_least(url, "aob_stream_clients", 1), 30)
        await submit_as(engine, delay_chain(3, 0.05), run_id)
        await following
        assert await engine.wait_ended(run_id) == "succeeded"
        history = await engine.events(run_id)
        assert_complete(early, history)
        assert early.connects == 1 and early.closes == [1000]

        late = WsWatcher([url], run_id, key)
        assert_complete_after(await late.follow(), history)
        assert late.closes == [1000]

        # Archived and trimmed from Redis: the history now comes from Postgres, still complete.
        archiver = EventArchiver(redis, pg_pool, Keys(deployment.key_prefix), consumer="test")
        assert await archiver.archive_run(run_id) == len(history)
        assert await redis.xlen(Keys(deployment.key_prefix).events(run_id)) == 0
        archived = WsWatcher([url], run_id, key)
        await archived.follow()
        assert_complete(archived, history)
        resumed = WsWatcher([url], run_id, key, events=history[:5])
        await resumed.follow()
        assert_complete(resumed, history)


def assert_complete_after(events: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    assert [e["id"] for e in events] == [e["id"] for e in history]


async def _at_least(url: str, name: str, value: float) -> bool:
    return await metric(url, name) >= value


async def test_200_clients_two_fanouts_20_runs_with_reconnects(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    key = await new_key(pg_pool, TENANT)
    settings = fanout_test_settings(deployment)
    async with (
        fanout_server(settings, redis, pg_pool) as url_a,
        fanout_server(settings, redis, pg_pool) as url_b,
        Engine(deployment, redis, coordinators=2) as engine,
    ):
        runs = [await engine.submit(delay_chain(6, 0.1)) for _ in range(20)]
        watchers = [WsWatcher([url_a, url_b] if i % 2 else [url_b, url_a], runs[i % 20], key) for i in range(200)]
        # Five clients lose their connection five times each mid-run and come back with `after`.
        flaky = watchers[:5]

        async def flaky_follow(watcher: WsWatcher) -> None:
            for _ in range(5):
                await watcher.session(stop_after=2)
            await watcher.follow()

        await asyncio.gather(*(flaky_follow(w) for w in flaky), *(w.follow() for w in watchers[5:]))
        for run_id in runs:
            assert await engine.wait_ended(run_id) == "succeeded"
        histories = {run_id: await engine.events(run_id) for run_id in runs}
        for watcher in watchers:
            assert_complete(watcher, histories[watcher.run_id])
        for watcher in flaky:
            assert watcher.connects == 6
        sent = await metric(url_a, "aob_stream_events_sent_total") + await metric(url_b, "aob_stream_events_sent_total")
        # Clients that hung up mid-run may leave frames in flight unread; nothing else is sent twice.
        assert sum(len(w.events) for w in watchers) <= sent <= sum(len(w.events) for w in watchers) + 5 * 5 * 20


async def test_stalled_client_is_resynced_while_others_keep_up(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    key = await new_key(pg_pool, TENANT)
    keys = Keys(deployment.key_prefix)
    settings = fanout_test_settings(deployment, queue_size=40, resync_send_timeout_s=20.0)
    async with fanout_server(settings, redis, pg_pool) as url, Engine(deployment, redis) as engine:
        slow_run = await engine.submit(delay_chain(1, 3.0))
        port = int(url.rsplit(":", 1)[1])
        stalled = await RawWsClient.connect(port, f"/ws/runs/{slow_run}", key)
        await eventually(lambda: _at_least(url, "aob_stream_clients", 1), 30)
        runs = [await engine.submit(delay_chain(4, 0.05)) for _ in range(5)]
        others = [WsWatcher([url], runs[i % 5], key) for i in range(20)]
        watching = asyncio.gather(*(w.follow() for w in others))
        # Agent-sized log events flood the slow run's stream: far more than the socket and the queue can hold.
        blob = "x" * 32_768
        for i in range(300):
            body = {"type": "log", "run_id": slow_run, "node_id": "d0", "ts": int(time.time() * 1000), "data": {"i": i}}
            await redis.xadd(keys.events(slow_run), {"e": json.dumps(body | {"pad": blob})})
        await eventually(lambda: _at_least(url, "aob_stream_resyncs_total", 1), 30)
        await watching
        for watcher in others:
            assert_complete(watcher, await engine.events(watcher.run_id))
            # Bounded well below the stalled client's 20 s send timeout, which is what blocking others would cost;
            # a loaded CI machine has taken over a second here.
            assert max(watcher.latencies_s[1:]) < 5.0, watcher.latencies_s
        # Once it reads again, the stalled client finds the resync message naming its last event, then the close.
        texts, close_code = await stalled.messages()
        received = [json.loads(text) for text in texts]
        assert received[-1] == {"type": "resync", "after": received[-2]["id"]}
        slow_history = await engine.events(slow_run)
        assert [e["id"] for e in received[:-1]] == [e["id"] for e in slow_history[: len(received) - 1]]
        assert close_code == 4408


async def test_auth_and_tenant_isolation(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    key = await new_key(pg_pool, TENANT)
    stranger = await new_key(pg_pool, "someone-else")
    async with (
        fanout_server(fanout_test_settings(deployment, admin_key="aob_admin"), redis, pg_pool) as url,
        Engine(deployment, redis) as engine,
    ):
        run_id = await engine.run_to_end(delay_chain(1, 0.01))
        history = [e["id"] for e in await engine.events(run_id)]

        async def read(path: str, *, headers: dict[str, str] | None = None, first: str | None = None) -> Any:
            async with connect(f"{url}{path}", additional_headers=headers or {}) as ws:
                if first is not None:
                    await ws.send(first)
                ids: list[str] = []
                with contextlib.suppress(ConnectionClosed):
                    async for message in ws:
                        ids.append(json.loads(message)["id"])
                return ws.close_code, ids

        assert await read(f"/ws/runs/{run_id}", headers={"Authorization": "Bearer nope"}) == (4401, [])
        assert await read(f"/ws/runs/{run_id}", first=json.dumps({"token": stranger})) == (4404, [])
        # The bootstrap key is tenant default.
        assert await read(f"/ws/runs/{run_id}", headers={"Authorization": "Bearer aob_admin"}) == (4404, [])
        assert await read(f"/ws/runs/{run_id}?after=banana", headers={"Authorization": f"Bearer {key}"}) == (4400, [])
        assert await read(f"/ws/runs/{run_id}?token={key}") == (4401, [])  # never in the URL
        assert await read(f"/ws/runs/{run_id}", headers={"Authorization": f"Bearer {key}"}) == (1000, history)
        assert await read(f"/ws/runs/{run_id}", first=json.dumps({"token": key})) == (1000, history)
        assert await read(f"/ws/runs/{run_id}", first="hello") == (4401, [])
        assert await read(f"/ws/runs/{run_id}?after={history[1]}", first=json.dumps({"token": key})) == (
            1000,
            history[2:],
        )


async def test_tenant_feed_carries_run_level_events(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    key = await new_key(pg_pool, TENANT)
    async with (
        fanout_server(fanout_test_settings(deployment), redis, pg_pool) as url,
        Engine(deployment, redis) as engine,
        connect(f"{url}/ws/tenant", additional_headers={"Authorization": f"Bearer {key}"}) as ws,
    ):
        await eventually(lambda: _at_least(url, "aob_stream_clients", 1), 30)
        run_id = await engine.run_to_end(delay_chain(2, 0.01))
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            while not seen or seen[-1]["type"] != "run_succeeded":
                seen.append(json.loads(await ws.recv()))
        assert [e["type"] for e in seen] == ["run_started", "run_succeeded"]
        assert {e["run_id"] for e in seen} == {run_id}
        assert await redis.exists(Keys(deployment.key_prefix).shard_for(run_id).tenant_events(TENANT))
