"""Taking completion signals of one shard crash-safely, and handing back those of coordinators that died."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.scripts import Scripts

logger = logging.getLogger(__name__)


class SignalInbox:
    """One coordinator's view of one shard's ``completion_signals``: a blocking pop into its own inflight list of
    that shard (the same slot)."""

    def __init__(self, redis: aioredis.Redis, scripts: Scripts, keys: Keys, coordinator_id: str, shard: int) -> None:
        self._redis = redis
        self._scripts = scripts
        self._shard = keys.shard(shard)
        self._coordinator_id = coordinator_id
        self.inflight_key = self._shard.coordinator_inflight(coordinator_id)

    async def join(self) -> None:
        """Record that this coordinator may hold signals of the shard, for whoever finds it dead later."""
        await self._redis.sadd(self._shard.coordinators, self._coordinator_id)

    async def take(self, block_s: float, batch: int) -> list[str]:
        """Wait up to ``block_s`` for a signal, then take up to ``batch`` more without waiting."""
        first = await self._redis.blmove(self._shard.completion_signals, self.inflight_key, block_s, "LEFT", "RIGHT")
        if first is None:
            return []
        more = await self._scripts.drain_signals(self._shard.index, self.inflight_key, batch - 1) if batch > 1 else []
        return [first, *more]

    async def done(self) -> None:
        """Forget the taken batch; only this coordinator fills its inflight list, so it holds just that batch."""
        await self._redis.delete(self.inflight_key)

    async def pending(self) -> list[str]:
        """Signals left in the inflight list by an earlier life of this coordinator id."""
        return list(await self._redis.lrange(self.inflight_key, 0, -1))


async def requeue_orphaned_signals(redis: aioredis.Redis, keys: Keys, shards: list[int], alive_id: str) -> int:
    """Give the inflight signals of ``shards`` held by every coordinator whose heartbeat expired back to their shard;
    returns how many moved."""
    async with redis.pipeline(transaction=False) as pipe:
        for shard in shards:
            pipe.smembers(keys.shard(shard).coordinators)
        members = await pipe.execute() if shards else []
    held = [(shard, c) for shard, ids in zip(shards, members, strict=True) for c in sorted(ids) if c != alive_id]
    async with redis.pipeline(transaction=False) as pipe:
        for _, coordinator_id in held:
            pipe.exists(keys.coordinator_alive(coordinator_id))
        alive = await pipe.execute() if held else []
    moved = 0
    for (shard, coordinator_id), up in zip(held, alive, strict=True):
        if up:
            continue
        queues = keys.shard(shard)
        inflight = queues.coordinator_inflight(coordinator_id)
        count = 0
        while await redis.lmove(inflight, queues.completion_signals, "RIGHT", "LEFT") is not None:
            count += 1
        await redis.srem(queues.coordinators, coordinator_id)
        if count:
            logger.warning("requeued %d signals of dead coordinator %s in shard %d", count, coordinator_id, shard)
        moved += count
    return moved
