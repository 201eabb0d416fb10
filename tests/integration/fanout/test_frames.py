"""The frames write path: each event framed once, pending events written together in bounded writes, and the same
messages on the wire as one ``websocket.send`` per event (which a server without the extension still gets)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from common.keys import Keys
from common.runs.messages import Event
from fanout import create_fanout_app
from fanout._app import uvicorn_config
from fanout._protocol import FramesProtocol
from tests.support.deployment import Deployment
from tests.support.streaming import new_key, serving

TENANT = "tenant-test"
EVENTS = 40


class CountingProtocol(FramesProtocol):
    """Records the size of every frames write (class-wide: the test serves one connection at a time)."""

    writes: list[int] = []

    async def send(self, message: Any) -> None:
        if message["type"] == "aob.websocket.frames":
            CountingProtocol.writes.append(len(message["bytes"]))
        await super().send(message)


async def ended_run(redis: aioredis.Redis, keys: Keys) -> tuple[str, list[str]]:
    """A run of ``EVENTS`` events, the last terminal, all stored before anyone watches; returns its id and ids."""
    run_id = uuid.uuid4().hex
    await redis.hset(keys.run(run_id), mapping={"run_id": run_id, "tenant": TENANT, "status": "succeeded"})
    ids = []
    for i in range(EVENTS):
        event_type = "run_succeeded" if i == EVENTS - 1 else "node_succeeded"
        stored = Event(type=event_type, run_id=run_id, node_id=f"n{i}", ts=int(time.time() * 1000), data={"i": i})
        ids.append(await redis.xadd(keys.events(run_id), {"e": stored.stored()}))
    return run_id, ids


async def watch(url: str, run_id: str, key: str) -> tuple[list[dict[str, Any]], int | None, list[Any]]:
    # The client offers permessage-deflate, as browsers do.
    async with connect(f"{url}/ws/runs/{run_id}", additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        events = [json.loads(message) async for message in ws]
        return events, ws.close_code, ws.protocol.extensions


async def test_pending_events_go_out_in_bounded_writes_one_message_each(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    keys = Keys(deployment.key_prefix)
    key = await new_key(pg_pool, TENANT)
    run_id, ids = await ended_run(redis, keys)
    settings = deployment.replace(fanout_port=0, write_batch_bytes=1024).fanout()
    config = uvicorn_config(create_fanout_app(settings, redis=redis, pool=pg_pool), settings)
    config.ws = CountingProtocol
    CountingProtocol.writes = []
    async with serving(config) as port:
        events, close_code, extensions = await watch(f"ws://127.0.0.1:{port}", run_id, key)
    assert [e["id"] for e in events] == ids and close_code == 1000
    assert extensions == []  # no per-client compression: the same bytes go to every client
    writes = CountingProtocol.writes
    # A backlog of 40 frames of ~170 bytes: a handful of writes, none past the bound.
    assert 1 < len(writes) < EVENTS / 4
    assert all(size <= 1024 for size in writes)


async def test_without_the_extension_each_event_is_one_send(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    keys = Keys(deployment.key_prefix)
    key = await new_key(pg_pool, TENANT)
    run_id, ids = await ended_run(redis, keys)
    settings = deployment.replace(fanout_port=0).fanout()
    config = uvicorn_config(create_fanout_app(settings, redis=redis, pool=pg_pool), settings)
    config.ws = "websockets-sansio"  # uvicorn's own protocol: no aob.websocket.frames in the scope
    async with serving(config) as port:
        plain, close_code, _ = await watch(f"ws://127.0.0.1:{port}", run_id, key)
    assert [e["id"] for e in plain] == ids and close_code == 1000
    framed_config = uvicorn_config(create_fanout_app(settings, redis=redis, pool=pg_pool), settings)
    async with serving(framed_config) as port:
        framed, _, _ = await watch(f"ws://127.0.0.1:{port}", run_id, key)
    assert framed == plain
