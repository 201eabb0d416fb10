"""Embedded Redis and Postgres: free ports beside running servers, real answers, clean stop, data kept on restart."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from devstack.embedded import EmbeddedServers

DEFAULT_PORTS = (6379, 5432)


@pytest.fixture
def default_ports_busy() -> Iterator[None]:
    """Make sure 6379 and 5432 are taken: by the test servers when they run, else by sockets bound here."""
    with contextlib.ExitStack() as stack:
        for port in DEFAULT_PORTS:
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            with contextlib.suppress(OSError):
                sock.bind(("127.0.0.1", port))
                sock.listen()
        yield


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def processes_using(path: Path) -> list[int]:
    """Pids whose command line mentions ``path`` (a postmaster started on it)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or ()) and alive(proc.info["pid"]):
            found.append(proc.info["pid"])
    return found


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Postgres' backends rename themselves, so find them by parentage)."""
    return [pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))]


async def test_servers_start_on_free_ports_answer_and_stop_cleanly(tmp_path: Path, default_ports_busy: None) -> None:
    servers = EmbeddedServers(tmp_path / "data")

    async with servers:
        assert servers.redis is not None and servers.postgres is not None
        assert servers.redis.pid is not None and servers.postgres.pid is not None
        pids = [*process_tree(servers.redis.pid), *process_tree(servers.postgres.pid)]
        assert len(pids) > 2  # the Postgres backends are there to be checked after stop
        assert servers.redis.port not in DEFAULT_PORTS
        assert servers.postgres.port not in DEFAULT_PORTS
        assert servers.redis_url is not None and servers.database_url is not None
        client = aioredis.Redis.from_url(servers.redis_url)
        try:
            assert await client.ping() is True
            assert (await client.info("server"))["redis_version"].startswith("6.2.")
        finally:
            await client.aclose()
        conn = await asyncpg.connect(servers.database_url)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    assert [pid for pid in pids if alive(pid)] == []
    assert servers.redis.pid is None and servers.postgres.pid is None
    await servers.stop()  # idempotent


async def test_postgres_keeps_its_data_across_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async with EmbeddedServers(data_dir, redis=False) as first:
        assert first.redis_url is None and first.database_url is not None
        conn = await asyncpg.connect(first.database_url)
        await conn.execute("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('hello')")
        await conn.close()
    async with EmbeddedServers(data_dir, redis=False) as second:
        assert second.database_url is not None
        conn = await asyncpg.connect(second.database_url)
        try:
            assert await conn.fetchval("SELECT v FROM kept") == "hello"
        finally:
            await conn.close()

    assert processes_using(data_dir) == []


async def test_start_stops_servers_left_running_on_the_same_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    abandoned = EmbeddedServers(data_dir)
    await abandoned.start()  # as if its supervisor had been SIGKILLed: never stopped
    assert abandoned.redis is not None and abandoned.postgres is not None
    leftover = [abandoned.redis.pid, abandoned.postgres.pid]

    async with EmbeddedServers(data_dir) as servers:
        assert [pid for pid in leftover if pid is not None and alive(pid)] == []
        assert servers.database_url is not None
        conn = await asyncpg.connect(servers.database_url)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()

    await abandoned.stop()
    assert processes_using(data_dir) == []
