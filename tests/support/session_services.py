"""The Redis and Postgres a test session uses: the ones at ``AOB_TEST_REDIS_URL`` / ``AOB_TEST_DATABASE_URL`` (by
default the local ports), or, when nothing answers there, embedded ones started for the session as ``aob up`` does.

The process that starts them (pytest's main process) exports their URLs in those variables, so xdist workers and
the service processes tests spawn use the same servers; it stops them when the session ends.

With ``AOB_TEST_REDIS_CLUSTER=1`` the session runs on a local Redis Cluster (three primaries, three replicas) started
for it instead: ``make test-cluster`` runs a representative part of the suite so.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from devstack.embedded import EmbeddedServers
from tests.support.redis_cluster import LocalRedisCluster

REDIS_VARIABLE, DATABASE_VARIABLE = "AOB_TEST_REDIS_URL", "AOB_TEST_DATABASE_URL"
CLUSTER_VARIABLE = "AOB_TEST_REDIS_CLUSTER"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def answers(url: str, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at ``url``'s host and port."""
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout_s):
            return True
    except OSError:
        return False


class SessionServices:
    """Embedded servers for what does not answer, owned by a thread of their own: their child processes belong to
    one event loop from start to stop, whatever loops the tests run."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: EmbeddedServers | None = None
        self._cluster: LocalRedisCluster | None = None

    def urls(self) -> tuple[str, str]:
        """The Redis and Postgres URLs to test against, starting embedded servers where nothing answers."""
        if os.environ.get(CLUSTER_VARIABLE) == "1" and REDIS_VARIABLE not in os.environ:
            self._cluster = LocalRedisCluster().start()
            os.environ[REDIS_VARIABLE] = self._cluster.url
            print(f"tests: {CLUSTER_VARIABLE}=1: started a Redis Cluster at {self._cluster.url}", file=sys.stderr)
        redis_url = os.environ.get(REDIS_VARIABLE)
        database_url = os.environ.get(DATABASE_VARIABLE)
        need_redis = redis_url is None and not answers(DEFAULT_REDIS_URL)
        need_postgres = database_url is None and not answers(DEFAULT_DATABASE_URL)
        if need_redis or need_postgres:
            servers = self._start(need_redis, need_postgres)
            for variable, url, needed in (
                (REDIS_VARIABLE, servers.redis_url, need_redis),
                (DATABASE_VARIABLE, servers.database_url, need_postgres),
            ):
                if needed and url is not None:
                    os.environ[variable] = url
                    print(f"tests: nothing answers at {variable}'s default; started {url}", file=sys.stderr)
        redis_url = os.environ.get(REDIS_VARIABLE, DEFAULT_REDIS_URL)
        return redis_url, os.environ.get(DATABASE_VARIABLE, DEFAULT_DATABASE_URL)

    def stop(self) -> None:
        """Stop what this process started (nothing otherwise)."""
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None
        if self._loop is None or self._servers is None:
            return
        asyncio.run_coroutine_threadsafe(self._servers.stop(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._servers = self._loop = self._thread = None

    def _start(self, redis: bool, postgres: bool) -> EmbeddedServers:
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="test-services", daemon=True)
        self._thread.start()
        data_dir = Path(tempfile.mkdtemp(prefix="aob-test-services-"))
        servers = self._servers = EmbeddedServers(data_dir, redis=redis, postgres=postgres)
        asyncio.run_coroutine_threadsafe(servers.start(), loop).result(timeout=120)
        return servers


SESSION_SERVICES = SessionServices()
