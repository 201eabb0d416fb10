"""Taking completion signals crash-safely, and handing back those of coordinators that died."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.scripts import Scripts

logger = logging.getLogger(__name__)


class SignalInbox:
    """One coordinator's view of ``completion_signals``: a blocking pop into its own inflight list."""

    def __init__(self, redis: aioredis.Redis, scripts: Scripts, keys: Keys, coordinator_id: str) -> None:
        self._redis = redis
        self._scripts = scripts
        self._keys = keys
        self.inflight_key = keys.coordinator_inflight(coordinator_id)

    async def take(self, block_s: float, batch: int) -> list[str]:
        """Wait up to ``block_s`` for a signal, then take up to ``batch`` more without waiting."""
        first = await self._redis.blmove(self._keys.completion_signals, self.inflight_key, block_s, "LEFT", "RIGHT")
        if first is None:
            return []
        more = await self._scripts.drain_signals(self.inflight_key, batch - 1) if batch > 1 else []
        return [first, *more]

    async def done(self) -> None:
        """Forget the taken batch; only this coordinator fills its inflight list, so it holds just that batch."""
        await self._redis.delete(self.inflight_key)

    async def pending(self) -> list[str]:
        """Signals left in the inflight list by an earlier life of this coordinator id."""
        return list(await self._redis.lrange(self.inflight_key, 0, -1))


async def requeue_orphaned_signals(redis: aioredis.Redis, keys: Keys, alive_id: str) -> int:
    """Give the inflight signals of every coordinator whose heartbeat expired back to the shared list."""
    moved = 0
    for coordinator_id in await redis.smembers(keys.coordinators):
        if coordinator_id == alive_id or await redis.exists(keys.coordinator_alive(coordinator_id)):
            continue
        inflight = keys.coordinator_inflight(coordinator_id)
        while await redis.lmove(inflight, keys.completion_signals, "RIGHT", "LEFT") is not None:
            moved += 1
        await redis.srem(keys.coordinators, coordinator_id)
        if moved:
            logger.warning("requeued %d signals of dead coordinator %s", moved, coordinator_id)
    return moved
