"""The Redis topology settings every process shares: a field group of ``CommonSettings``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.keys import DEFAULT_SHARDS


class RedisTopologyFields(BaseModel):
    """How Redis is laid out: cluster or not, and how many shards the engine's queues are split into."""

    redis_cluster: bool = Field(
        default=False, description="AOB_REDIS_URL names a Redis Cluster node (same as a redis+cluster:// URL)"
    )
    shards: int = Field(
        default=DEFAULT_SHARDS,
        ge=1,
        le=1024,
        description="shards of the engine's queues; fixed at install (a run's keys are named by its shard)",
    )
