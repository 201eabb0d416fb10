"""The one Redis reader of a process: XREAD BLOCK over every watched stream, feeding the hub; on a Redis Cluster,
where one XREAD reads one slot, an XREAD per slot at once, polled."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from common.events.frames import START_ID, from_entry
from common.events.hub import Hub
from common.redis_client import is_cluster, slot_groups

logger = logging.getLogger(__name__)

_RETRY_S = 0.5
_UNBLOCK_RETRY_S = 0.001
# How long a reader on a cluster waits after a round of reads that found nothing (a new stream wakes it at once).
CLUSTER_POLL_S = 0.02
_READ_GRACE_S = 10.0


def dedicated_client(redis: aioredis.Redis) -> aioredis.Redis:
    """A client with one connection of its own to ``redis``'s server, so it can block and be woken by id."""
    pool = redis.connection_pool
    kwargs = dict(pool.connection_kwargs)
    return aioredis.Redis(
        connection_pool=aioredis.ConnectionPool(connection_class=pool.connection_class, max_connections=1, **kwargs)
    )


class StreamReader:
    """Reads the hub's streams on a dedicated connection; a newly watched stream interrupts the current block.

    The interruption is ``CLIENT UNBLOCK`` of the reader's connection, sent from the shared client, so a new
    subscriber never waits for ``block_ms`` to pass.
    """

    def __init__(self, hub: Hub, redis: aioredis.Redis, *, block_ms: int, batch: int) -> None:
        self.hub = hub
        self.redis = redis
        self.block_ms = block_ms
        self.batch = batch
        self._conn = None if is_cluster(redis) else dedicated_client(redis)
        self._client_id: int | None = None
        self._generation = 0
        self._armed = 0
        self._blocked = False
        self._changed = asyncio.Event()
        self._waker: asyncio.Task[None] | None = None
        hub.on_change(self.wake)

    def wake(self) -> None:
        """The watched set changed: re-arm the XREAD now."""
        self._generation += 1
        self._changed.set()
        if self._blocked and (self._waker is None or self._waker.done()):
            self._waker = asyncio.create_task(self._unblock())

    async def run(self) -> None:
        """Read until cancelled; Redis errors are logged and retried with the cursors kept, so nothing is lost."""
        while True:
            try:
                await self._read_once()
            except (RedisError, OSError) as exc:
                logger.warning("stream reader: %s: %s; retrying in %.1fs", type(exc).__name__, exc, _RETRY_S)
                self._client_id = None
                await asyncio.sleep(_RETRY_S)

    async def aclose(self) -> None:
        """Close the dedicated connection (after ``run`` was cancelled)."""
        if self._waker is not None:
            self._waker.cancel()
        if self._conn is not None:
            await self._conn.aclose()
            await self._conn.connection_pool.disconnect()

    async def _read_once(self) -> None:
        self._changed.clear()
        self._armed = self._generation
        await self._start_new_streams()
        cursors = self.hub.cursors()
        if not cursors:
            await self._changed.wait()
            return
        if self._conn is None:
            await self._poll_slots(cursors)
            return
        if self._client_id is None:
            self._client_id = int(await self._conn.client_id())
        if self._armed != self._generation:
            return
        self._blocked = True
        try:
            # A connection that died while blocked answers never: the read gives up a while after its block ends.
            async with asyncio.timeout(self.block_ms / 1000 + _READ_GRACE_S):
                reply = await self._conn.xread(cursors, count=self.batch, block=self.block_ms)
        finally:
            self._blocked = False
        for stream, entries in _stream_entries(reply):
            self.hub.dispatch(stream, cursors[stream], tuple(from_entry(i, f) for i, f in entries))

    async def _poll_slots(self, cursors: dict[str, str]) -> None:
        groups = slot_groups(self.redis, list(cursors))
        replies = await asyncio.gather(
            *(self.redis.xread({stream: cursors[stream] for stream in group}, count=self.batch) for group in groups)
        )
        got = False
        for reply in replies:
            for stream, entries in _stream_entries(reply):
                got = got or bool(entries)
                self.hub.dispatch(stream, cursors[stream], tuple(from_entry(i, f) for i, f in entries))
        if not got:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLUSTER_POLL_S):
                    await self._changed.wait()

    async def _start_new_streams(self) -> None:
        # A new stream is read from its current end; subscribers get everything before it from the history.
        streams = self.hub.unstarted()
        if not streams:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xrevrange(stream, "+", "-", count=1)
            lasts = await pipe.execute()
        for stream, last in zip(streams, lasts, strict=True):
            self.hub.start(stream, last[0][0] if last else START_ID)

    async def _unblock(self) -> None:
        # CLIENT UNBLOCK answers 0 when the XREAD has not reached Redis yet; try again until it lands or re-arms.
        try:
            while self._blocked and self._armed != self._generation and self._client_id is not None:
                if await self.redis.client_unblock(self._client_id):
                    return
                await asyncio.sleep(_UNBLOCK_RETRY_S)
        except RedisError as exc:
            logger.warning("stream reader: could not interrupt the block: %s", exc)


def _stream_entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    # RESP2 (what ``connect_redis`` speaks): [[stream, [(id, fields), ...]], ...], or nothing after a timeout.
    return [(stream, entries) for stream, entries in reply or ()]
