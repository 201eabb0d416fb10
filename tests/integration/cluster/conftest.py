"""A real Redis Cluster (three primaries, three replicas) for the tests of this package, started once per session
process; each test has its own key prefix and schema, as on the single server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from common.redis_client import connect_redis
from tests.support.deployment import Deployment
from tests.support.redis_cluster import LocalRedisCluster


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def cluster_redis(redis_cluster: LocalRedisCluster, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(redis_cluster.url)
    yield client
    # A scan on a cluster client visits every primary; a delete of many keys is split by slot.
    batch = [k async for k in client.scan_iter(match=f"{key_prefix}*", count=1000)]
    if batch:
        await client.delete(*batch)
    await client.aclose()


@pytest.fixture
def cluster_deployment(deployment: Deployment, redis_cluster: LocalRedisCluster) -> Deployment:
    return deployment.replace(redis_url=redis_cluster.url)
