"""The consumer of ``wf.children``: each child run's end advances the parent's control node.

Records are read in the consumer group ``control`` and acknowledged only after the parent node moved on, so
a worker killed mid-way leaves them pending; any control worker claims them after ``control_reclaim_idle_s``.
Counting an end twice is impossible (the state script ignores a child already counted), and the sweeper
re-advances every waiting node now and then, which also ends children of parents that ended otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ResponseError

from common.keys import CONTROL_GROUP, Keys
from common.runs.messages import ChildRunEnded
from common.settings import ControlNodeFields
from common.streams import ensure_group
from workers.control._advance import Advancer
from workers.control._state import ControlStore

logger = logging.getLogger(__name__)

READ_BATCH = 100


class ChildrenConsumer:
    """Follows child-run ends, reclaims records of dead consumers and sweeps waiting nodes, until stopped."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        store: ControlStore,
        advancer: Advancer,
        settings: ControlNodeFields,
        consumer_id: str,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._advancer = advancer
        self._settings = settings
        self.consumer_id = consumer_id

    async def ensure_group(self) -> None:
        await ensure_group(self._redis, self._keys.children, CONTROL_GROUP)

    async def run(self, stopping: asyncio.Event) -> None:
        """Read, reclaim and sweep until ``stopping`` is set."""
        await self.ensure_group()
        tasks = [
            asyncio.create_task(self._read_loop(stopping), name="children-read"),
            asyncio.create_task(self._every(stopping, self._settings.control_reclaim_idle_s / 2, self.reclaim)),
            asyncio.create_task(self._every(stopping, self._settings.control_sweep_interval_s, self.sweep)),
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                reply = await self._redis.xreadgroup(
                    CONTROL_GROUP,
                    self.consumer_id,
                    {self._keys.children: ">"},
                    count=READ_BATCH,
                    block=self._settings.control_block_ms,
                )
                for entry_id, fields in reply[0][1] if reply else []:
                    await self.handle(entry_id, fields)
            except (ConnectionError, OSError, ResponseError):
                logger.exception("reading %s failed; retrying", self._keys.children)
                await asyncio.sleep(self._settings.control_block_ms / 1000)

    async def _every(self, stopping: asyncio.Event, interval_s: float, action: Any) -> None:
        while not stopping.is_set():
            try:
                await action()
            except Exception:
                logger.exception("%s failed; trying again in %.1fs", action.__name__, interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval_s)

    async def handle(self, entry_id: str, fields: dict[str, str] | None) -> None:
        """Count one child's end and advance its parent node; acknowledge when done."""
        try:
            record = ChildRunEnded.model_validate_json((fields or {}).get("c", ""))
        except ValidationError:
            logger.error("malformed child record %s dropped: %r", entry_id, fields)
            record = None
        if record is not None and record.parent_node_id is not None:
            parent, node = record.parent_run_id, record.parent_node_id
            index = await self._store.record_end(parent, node, record)
            # A repeated end (-2) still advances: the first handling may have died before it did.
            if index != -1:
                await self._advancer.advance(parent, node)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(self._keys.children, CONTROL_GROUP, entry_id)
            pipe.xdel(self._keys.children, entry_id)
            await pipe.execute()

    async def reclaim(self) -> int:
        """Take over records pending longer than the reclaim idle time; returns how many were handled."""
        min_idle_ms = int(self._settings.control_reclaim_idle_s * 1000)
        start, handled = "0-0", 0
        while True:
            # Redis 6.2 replies [next, entries]; 7.x adds the ids of deleted entries as a third element.
            reply: Any = await self._redis.xautoclaim(
                self._keys.children, CONTROL_GROUP, self.consumer_id, min_idle_ms, start_id=start, count=READ_BATCH
            )
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields is None:
                    await self._redis.xack(self._keys.children, CONTROL_GROUP, entry_id)
                    continue
                logger.warning("reclaimed child record %s", entry_id)
                await self.handle(entry_id, fields)
                handled += 1
            if start == "0-0" or not entries:
                return handled

    async def sweep(self) -> int:
        """Advance every waiting control node once; returns how many were looked at."""
        active = await self._store.active()
        for run_id, node_id in active:
            await self._advancer.advance(run_id, node_id)
        return len(active)
