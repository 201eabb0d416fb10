"""Reading the engine's sharded queues whole, for tests that look at every run's tokens, signals or entries."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from common.keys import Keys


async def delayed_members(redis: aioredis.Redis, keys: Keys) -> list[str]:
    """Every shard's delayed tokens (JSON), each shard's in due order."""
    return [member for shard in keys.all_shards() for member in await redis.zrange(shard.delayed, 0, -1)]


async def task_entries(redis: aioredis.Redis, keys: Keys, node_type: str) -> list[tuple[str, dict[str, str]]]:
    """Every shard's entries of ``node_type``'s task stream."""
    return [entry for stream in keys.tasks(node_type) for entry in await redis.xrange(stream)]


async def signals_waiting(redis: aioredis.Redis, keys: Keys) -> list[str]:
    """Every shard's completion signals not taken yet."""
    return [raw for shard in keys.all_shards() for raw in await redis.lrange(shard.completion_signals, 0, -1)]


async def ledger_entries(redis: aioredis.Redis, keys: Keys) -> list[Any]:
    """Every shard's ledger entries not recorded yet."""
    return [entry for shard in keys.all_shards() for entry in await redis.xrange(shard.ledger)]
