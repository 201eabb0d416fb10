"""``aob_queue_depth{type}`` follows the task streams, and is left out rather than stale when Redis is down."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.queue_depth import export_queue_depth
from common.redis_client import connect_redis
from common.workflow.ir import WORKER_TYPES
from tests.support.streaming import free_port


def samples(metrics: Metrics) -> dict[str, float]:
    """The gauge's value per type, as a scrape shows it."""
    (family,) = [f for f in metrics.registry.collect() if f.name == "aob_queue_depth"]
    return {sample.labels["type"]: sample.value for sample in family.samples}


async def test_it_counts_each_types_tokens_waiting_or_in_hand(redis: aioredis.Redis, keys: Keys) -> None:
    metrics = Metrics()
    for _ in range(3):
        await redis.xadd(keys.shard(1).tasks("http"), {"t": "{}"})
    agent_entry = await redis.xadd(keys.shard(2).tasks("agent"), {"t": "{}"})
    await export_queue_depth(redis, keys, metrics)
    assert samples(metrics) == {name: 0.0 for name in WORKER_TYPES} | {"http": 3.0, "agent": 1.0}
    # A worker acknowledges and deletes what it handled.
    await redis.xdel(keys.shard(2).tasks("agent"), agent_entry)
    await export_queue_depth(redis, keys, metrics)
    assert samples(metrics)["agent"] == 0.0
    assert 'aob_queue_depth{type="http"} 3.0' in metrics.render()[0].decode()


async def test_a_redis_that_does_not_answer_leaves_the_gauge_empty_not_stale(redis: aioredis.Redis, keys: Keys) -> None:
    metrics = Metrics()
    await redis.xadd(keys.shard(0).tasks("builtin"), {"t": "{}"})
    await export_queue_depth(redis, keys, metrics)
    assert samples(metrics)["builtin"] == 1.0
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    try:
        await export_queue_depth(dead, keys, metrics)
    finally:
        await dead.aclose()
    assert samples(metrics) == {}
