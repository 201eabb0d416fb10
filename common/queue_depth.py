"""``aob_queue_depth{type}``: the tokens queued for each worker type, which Kubernetes scales the workers by
(deploy/kubernetes: a HorizontalPodAutoscaler per type over prometheus-adapter)."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.keys import Keys
from common.metrics import Metrics
from common.workflow.ir import WORKER_TYPES

logger = logging.getLogger(__name__)

# The name the worker autoscalers ask prometheus-adapter for (deploy/kubernetes/autoscaling.yaml).
QUEUE_DEPTH_METRIC = "aob_queue_depth"


async def export_queue_depth(redis: aioredis.Redis, keys: Keys, metrics: Metrics) -> None:
    """Set ``aob_queue_depth{type}`` to the length of each worker type's task streams (every shard's), read now.

    Workers delete the entries they acknowledge, so a stream's length is its tokens waiting plus those in hand. When
    Redis does not answer the gauge is emptied, not left stale: an autoscaler without the metric keeps the scale it
    has, where a stale value would keep moving it.
    """
    gauge = metrics.gauge(QUEUE_DEPTH_METRIC, "tokens queued for workers of the type, waiting or in hand", ["type"])
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for worker_type in WORKER_TYPES:
                for stream in keys.tasks(worker_type):
                    pipe.xlen(stream)
            replies = await pipe.execute()
    except RedisError:
        logger.warning("queue depth: Redis did not answer; aob_queue_depth left out of this scrape", exc_info=True)
        gauge.clear()
        return
    for i, worker_type in enumerate(WORKER_TYPES):
        gauge.labels(worker_type).set(sum(replies[i * keys.shards : (i + 1) * keys.shards]))
