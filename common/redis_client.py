"""Redis connections: one asyncio client per process, strings decoded as UTF-8.

``AOB_REDIS_URL`` names a single server (``redis://``, ``rediss://``, ``unix://``), a Redis Cluster
(``redis+cluster://host:port,host:port/``, or any URL with ``AOB_REDIS_CLUSTER=1``) or a Sentinel-watched primary
(``redis+sentinel://host:port,host:port/<service name>[/db]``). Everything else in aob takes the client it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.crc import key_slot

from common.errors import ConfigError

CLUSTER_SCHEME = "redis+cluster"
SENTINEL_SCHEME = "redis+sentinel"
# No socket timeout: with one, redis-py (its default is 5 s since 8.0) sends every command under asyncio.wait_for,
# which on Python 3.11 drops a cancel that arrives as the send finishes, so a cancelled task went on running. Our
# loops bound their own waits with asyncio.timeout, which keeps the cancel.
_NO_SOCKET_TIMEOUT: dict[str, Any] = {"socket_timeout": None}


def connect_redis(url: str, *, max_connections: int = 64, cluster: bool = False) -> aioredis.Redis:
    """Return a pooled asyncio client for ``url`` (hiredis parser when installed): a cluster client for a cluster
    URL or when ``cluster`` is set, a Sentinel-managed primary for a Sentinel URL, a plain client otherwise.

    The pool blocks when all connections are busy, so a burst of tasks waits instead of failing.
    Raises ``ConfigError`` on a cluster or Sentinel URL without hosts.
    """
    scheme = urlsplit(url).scheme
    if scheme == SENTINEL_SCHEME:
        return _sentinel_primary(url, max_connections)
    if scheme == CLUSTER_SCHEME or cluster:
        return _cluster(url, max_connections)
    pool = aioredis.BlockingConnectionPool.from_url(
        url, decode_responses=True, max_connections=max_connections, timeout=None, **_NO_SOCKET_TIMEOUT
    )
    return aioredis.Redis(connection_pool=pool)


def is_cluster(redis: aioredis.Redis) -> bool:
    """Whether ``redis`` talks to a Redis Cluster (multi-key commands must then stay within one slot); a wrapper
    that hands its attributes through counts as what it wraps."""
    return isinstance(redis, RedisCluster) or getattr(redis, "nodes_manager", None) is not None


def slot_groups(redis: aioredis.Redis, keys: Sequence[str]) -> list[list[str]]:
    """``keys`` grouped so that each group may go in one multi-key command: by slot on a cluster, else all together."""
    if not is_cluster(redis):
        return [list(keys)] if keys else []
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return list(groups.values())


async def call_script_many(
    redis: aioredis.Redis, script: AsyncScript, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]
) -> list[Any]:
    """Call ``script`` once per ``(keys, args)``: in one pipeline on a single server, at once on a cluster (whose
    pipelines refuse scripts); returns the replies in order."""
    if is_cluster(redis):
        return list(await asyncio.gather(*(script(keys=keys, args=args) for keys, args in calls)))
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            await script(keys=keys, args=args, client=pipe)
        return list(await pipe.execute()) if calls else []


def _hosts(url: str) -> tuple[list[tuple[str, int]], str | None, str | None, str]:
    parts = urlsplit(url)
    netloc = parts.netloc
    username = password = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        user, _, secret = auth.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    hosts = []
    for host in filter(None, netloc.split(",")):
        name, _, port = host.rpartition(":")
        hosts.append((name or host, int(port) if name else 6379))
    if not hosts:
        raise ConfigError(f"AOB_REDIS_URL: expected {parts.scheme}://host:port[,host:port...]/..., got no host")
    return hosts, username, password, parts.path


def _cluster(url: str, max_connections: int) -> RedisCluster:
    hosts, username, password, _ = _hosts(url)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in hosts],
        username=username,
        password=password,
        decode_responses=True,
        max_connections=max_connections,
        # A failover moves slots: commands are retried (with the map refreshed) until the replica took over.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=20),
        **_NO_SOCKET_TIMEOUT,
    )


def _sentinel_primary(url: str, max_connections: int) -> aioredis.Redis:
    hosts, username, password, path = _hosts(url)
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise ConfigError(f"AOB_REDIS_URL: expected {SENTINEL_SCHEME}://host:port,.../<service name>, got {url!r}")
    sentinel = Sentinel(hosts, decode_responses=True, **_NO_SOCKET_TIMEOUT)
    return sentinel.master_for(
        service,
        username=username,
        password=password,
        db=int(db or 0),
        decode_responses=True,
        max_connections=max_connections,
        **_NO_SOCKET_TIMEOUT,
    )
