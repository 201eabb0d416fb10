"""Shard leases: which coordinator takes the completion signals and runs the timers of which shard.

Every coordinator heartbeats; each counts the live ones and holds its fair share (``ceil(shards / live)``) of
shard leases, each a key holding its id with an expiry of three heartbeats. A coordinator that dies stops renewing:
its leases expire and the others take them at their next heartbeat. One that joins takes what the others give
back when they see it (each releases what it holds beyond the new share). Two coordinators briefly serving one
shard is harmless: every apply is atomic and idempotent by token id; leases only spread the work.
"""

from __future__ import annotations

import asyncio
import logging
import math
import zlib

import redis.asyncio as aioredis

from common.keys import Keys

logger = logging.getLogger(__name__)

# KEYS[1] = lease; ARGV[1] = coordinator id, ARGV[2] = ttl ms. Renews the lease if it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS[1] = lease; ARGV[1] = coordinator id. Gives the lease back if it is still ours.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class ShardLeases:
    """The shards one coordinator owns, kept to its fair share by ``refresh`` (called every heartbeat)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, coordinator_id: str, ttl_ms: int) -> None:
        self._redis = redis
        self._keys = keys
        self._id = coordinator_id
        self._ttl_ms = ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.owned: set[int] = set()
        # Coordinators look for free shards from different places, so joiners rarely race for the same lease.
        self._start = zlib.crc32(coordinator_id.encode()) % keys.shards

    async def refresh(self, live: int) -> set[int]:
        """Renew the leases held, give back those beyond the share of ``live`` coordinators, take free ones up to
        it; returns the shards owned now."""
        held = sorted(self.owned)
        # Renewed together: a heartbeat must not take a round trip per shard.
        renewed = await asyncio.gather(
            *(self._renew(keys=[self._keys.shard(shard).lease], args=[self._id, self._ttl_ms]) for shard in held)
        )
        for shard, kept in zip(held, renewed, strict=True):
            if not kept:
                logger.warning("coordinator %s lost the lease of shard %d", self._id, shard)
                self.owned.discard(shard)
        share = math.ceil(self._keys.shards / max(1, live))
        for shard in sorted(self.owned, reverse=True)[: max(0, len(self.owned) - share)]:
            await self._release(keys=[self._keys.shard(shard).lease], args=[self._id])
            self.owned.discard(shard)
            logger.info("coordinator %s gave back shard %d (%d coordinators)", self._id, shard, live)
        for offset in range(self._keys.shards):
            if len(self.owned) >= share:
                break
            shard = (self._start + offset) % self._keys.shards
            if shard in self.owned:
                continue
            if await self._redis.set(self._keys.shard(shard).lease, self._id, nx=True, px=self._ttl_ms):
                self.owned.add(shard)
                logger.info("coordinator %s took shard %d", self._id, shard)
        return set(self.owned)

    async def release(self, shards: set[int]) -> None:
        """Give the leases of ``shards`` back (on shutdown), so peers take them at their next heartbeat."""
        for shard in sorted(shards):
            await self._release(keys=[self._keys.shard(shard).lease], args=[self._id])
        self.owned -= shards
