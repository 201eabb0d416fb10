"""Kill -9 a fanout process mid-run: its clients reconnect to the other one with `after` and miss nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis

from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.processes import ServiceProcess
from tests.support.streaming import WsWatcher, delay_chain, free_port, new_key

TENANT = "tenant-test"


def _fanout(deployment: Deployment, port: int, log: Path) -> ServiceProcess:
    settings = deployment.fanout()
    env = {
        "AOB_REDIS_URL": str(settings.redis_url),
        "AOB_DATABASE_URL": str(settings.database_url),
        "AOB_KEY_PREFIX": settings.key_prefix,
        "AOB_DB_SCHEMA": settings.db_schema,
        "AOB_FANOUT_PORT": str(port),
        "AOB_LOG_JSON": "false",
        "AOB_READER_BLOCK_MS": "500",
    }
    return ServiceProcess(["fanout"], env, log)


async def _ready(port: int) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_clients_of_a_killed_fanout_resume_on_the_other(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    key = await new_key(pg_pool, TENANT)
    ports = [free_port(), free_port()]
    doomed, survivor = (_fanout(deployment, port, tmp_path / f"fanout-{port}.log") for port in ports)
    doomed.start()
    survivor.start()
    try:
        for port in ports:
            await eventually(lambda port=port: _ready(port), timeout_s=20)
        url_doomed, url_survivor = (f"ws://127.0.0.1:{port}" for port in ports)
        async with Engine(deployment, redis) as engine:
            # Runs long enough (8 x 0.5 s) that every client is following one before any ends, even on a busy machine.
            runs = [await engine.submit(delay_chain(8, 0.5)) for _ in range(4)]
            # Every client starts on the doomed process; on failure it moves to the next url.
            watchers = [WsWatcher([url_doomed, url_survivor], runs[i % 4], key) for i in range(40)]
            following = asyncio.gather(*(w.follow(timeout_s=40) for w in watchers))
            await eventually(lambda: _all_started(watchers), timeout_s=20)
            doomed.kill()
            await following
            for watcher in watchers:
                history = await engine.events(watcher.run_id)
                assert [e["id"] for e in watcher.events] == [e["id"] for e in history]
                assert watcher.events == history
                assert watcher.connects >= 2
            assert all(1006 in w.closes for w in watchers)  # each lost its connection to the kill
    finally:
        doomed.kill()
        assert survivor.stop() == 0, survivor.log_tail()


async def _all_started(watchers: list[WsWatcher]) -> bool:
    # Every client has some events but no run has ended: the kill lands mid-run for all of them.
    return all(w.events and not w.ended for w in watchers)
