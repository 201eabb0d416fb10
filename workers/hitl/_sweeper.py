"""Repairs what a crash can leave behind: a decision whose completion push was lost, and approvals of ended runs."""

from __future__ import annotations

import asyncio
import json
import logging

import asyncpg
import redis.asyncio as aioredis

from common.hitl_settings import HitlNodeFields
from common.keys import Keys
from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.retry import Retry
from common.runs.approval_store import pending_runs, recently_decided
from common.runs.approvals import cancel_approvals, completion_for
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.records import recorded_status

logger = logging.getLogger(__name__)


class ApprovalSweeper:
    """Sweeps once on start, then every ``hitl_sweep_interval_s`` until shut down; ``async with`` runs it meanwhile."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        redis: aioredis.Redis,
        keys: Keys,
        settings: HitlNodeFields,
        *,
        metrics: Metrics | None = None,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._settings = settings
        retry = Retry("hitl-sweeper", metrics=metrics)
        self._periodic = PeriodicTask(self.sweep, settings.hitl_sweep_interval_s, retry=retry, stage="sweep")
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ApprovalSweeper:
        self._task = asyncio.create_task(self.run(), name="hitl-sweeper")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        """Sweep until ``shutdown``; a failed sweep is logged, counted and tried again with backoff."""
        await self._periodic.run()

    async def shutdown(self) -> None:
        """Stop after the sweep in progress. Idempotent."""
        await self._periodic.shutdown()

    async def sweep(self) -> tuple[int, int]:
        """One pass; returns (completions re-pushed, approvals cancelled)."""
        return await self.repush_lost_completions(), await self.cancel_orphaned()

    async def repush_lost_completions(self) -> int:
        """Push again the completion of each decided approval whose node still waits for it.

        The coordinator applies a token once, so a push that was not lost after all is dropped as a duplicate.
        """
        rows = await recently_decided(
            self._pool, older_than_s=self._settings.hitl_repush_grace_s, within_s=self._settings.hitl_repush_window_s
        )
        pushed = 0
        for row in rows:
            raw = await self._redis.hget(self._keys.nodes(row.approval.run_id), row.approval.node_id)
            state = json.loads(raw) if raw else {}
            if state.get("status") != "waiting" or state.get("approval_id") != row.id:
                continue
            signal = completion_for(row).model_dump_json(exclude_none=True)
            await self._redis.rpush(self._keys.shard_for(row.approval.run_id).completion_signals, signal)
            logger.warning("approval %s: re-pushed the completion of run %s", row.id, row.approval.run_id)
            pushed += 1
        return pushed

    async def cancel_orphaned(self) -> int:
        """Cancel the pending approvals of runs that ended (timed out, failed) or are gone from Redis and Postgres
        holds as ended (a live one is rebuilt with its approvals pending)."""
        cancelled = 0
        for run_id in await pending_runs(self._pool):
            status = await self._redis.hget(self._keys.run(run_id), "status")
            if status is None:
                status = await recorded_status(self._pool, run_id)
            if status is None or status in TERMINAL_RUN_STATUSES:
                cancelled += len(await cancel_approvals(self._pool, self._redis, self._keys, run_id))
        return cancelled
