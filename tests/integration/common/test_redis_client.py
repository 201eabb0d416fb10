"""``connect_redis``: a Sentinel URL reaches the primary a real Sentinel names; a cluster URL a real cluster."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.redis_client import connect_redis, is_cluster
from tests.support.eventually import eventually
from tests.support.redis_cluster import LocalRedisCluster, cluster_port, redis_binaries


@pytest.fixture
def sentinel(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A private primary and a Sentinel watching it as ``aob``; yields (primary port, sentinel port)."""
    server = redis_binaries()[0]
    primary, watcher = cluster_port(), cluster_port()
    config = tmp_path / "sentinel.conf"
    config.write_text(f"port {watcher}\nbind 127.0.0.1\nsentinel monitor aob 127.0.0.1 {primary} 1\n")
    processes = [
        subprocess.Popen([server, "--port", str(primary), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]),
        subprocess.Popen([server, str(config), "--sentinel"]),
    ]
    try:
        for port in (primary, watcher):
            LocalRedisCluster.wait_answers(port)
        yield primary, watcher
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


async def test_a_sentinel_url_talks_to_the_primary_the_sentinel_names(sentinel: tuple[int, int]) -> None:
    primary, watcher = sentinel
    redis = connect_redis(f"redis+sentinel://127.0.0.1:{watcher}/aob/0")
    try:

        async def answers() -> bool:
            return bool(await redis.set("aob-sentinel-test", "ok"))

        await eventually(answers, timeout_s=20)
        info = await redis.info("server")
        assert int(info["tcp_port"]) == primary
        assert await redis.get("aob-sentinel-test") == "ok"
    finally:
        await redis.aclose()


async def test_a_cluster_url_gives_a_cluster_client(redis_cluster_for_client: LocalRedisCluster) -> None:
    redis = connect_redis(redis_cluster_for_client.url)
    try:
        assert is_cluster(redis)
        assert await redis.set("{aob}:a", "1") and await redis.get("{aob}:a") == "1"
    finally:
        await redis.aclose()


@pytest.mark.parametrize("url", ["redis+cluster:///", "redis+sentinel://127.0.0.1:26379/"])
def test_a_url_without_hosts_or_service_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="AOB_REDIS_URL"):
        connect_redis(url)


@pytest.fixture
def redis_cluster_for_client() -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()
