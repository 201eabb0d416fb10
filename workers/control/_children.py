"""The consumer of ``wf.children``: each child run's end advances the parent's control node.

Records are read in the consumer group ``control`` and acknowledged only after the parent node moved on, so
a worker killed mid-way leaves them pending; any control worker claims them after ``control_reclaim_idle_s``.
Counting an end twice is impossible (the state script ignores a child already counted), and the sweeper
re-advances every waiting node now and then, which also ends children of parents that ended otherwise.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from pydantic import ValidationError

from common.keys import CONTROL_GROUP, Keys
from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.retry import Retry
from common.runs.messages import ChildRunEnded
from common.settings import WorkerSettings
from common.streams import Batch, StreamConsumer
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
        settings: WorkerSettings,
        consumer_id: str,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._keys = keys
        self._store = store
        self._advancer = advancer
        self.consumer_id = consumer_id
        self._consumer = StreamConsumer(
            redis,
            name="children",
            group=CONTROL_GROUP,
            consumer=consumer_id,
            streams=[shard.children for shard in keys.all_shards()],
            handler=self._handle_batch,
            batch=READ_BATCH,
            block_ms=settings.control_block_ms,
            claim_idle_s=settings.control_reclaim_idle_s,
            delete_acked=True,
            grace_s=settings.shutdown_grace_s,
            metrics=metrics,
        )
        retry = Retry("children-sweeper", metrics=metrics)
        self._sweeper = PeriodicTask(self.sweep, settings.control_sweep_interval_s, retry=retry, stage="sweep")

    async def __aenter__(self) -> ChildrenConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def ensure_group(self) -> None:
        await self._consumer.ensure_groups()

    async def run(self) -> None:
        """Read, reclaim and sweep until ``shutdown``."""
        await asyncio.gather(self._consumer.run(), self._sweeper.run())

    async def shutdown(self) -> None:
        """Stop reading and sweeping; the records in hand get the grace period. Idempotent."""
        await self._consumer.shutdown()
        await self._sweeper.shutdown()

    async def _handle_batch(self, batch: Batch) -> None:
        for entry_id, fields in batch.entries:
            await self.handle(batch.stream, entry_id, fields)

    async def handle(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
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
        await self._consumer.ack(stream, [entry_id])

    async def reclaim(self) -> int:
        """Take over records pending longer than the reclaim idle time; returns how many were handled."""
        return await self._consumer.claim()

    async def sweep(self) -> int:
        """Advance every waiting control node once; returns how many were looked at."""
        active = await self._store.active()
        for run_id, node_id in active:
            await self._advancer.advance(run_id, node_id)
        return len(active)
