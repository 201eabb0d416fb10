"""The coordinator's reconciler: at start and every ``reconcile_interval_s``, Redis is brought back in line with
Postgres (``common.runs.reconcile``)."""

from __future__ import annotations

import logging

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.retry import Retry
from common.runs.cas import Cas
from common.runs.reconcile import ReconcileReport, reconcile
from common.runs.scripts import Scripts
from common.settings import CoordinatorSettings

logger = logging.getLogger(__name__)


class Reconciler:
    """Rebuilds live runs Redis lost, starts stranded runs and settles half-done patches, until shut down.

    Every coordinator runs one: a rebuild refuses a run Redis already holds, so concurrent passes are harmless.
    """

    def __init__(
        self,
        settings: CoordinatorSettings,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        *,
        cas: Cas | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        keys = Keys(settings.key_prefix, settings.shards)
        self._settings = settings
        self._scripts = Scripts(redis, keys)
        self._pool = pool
        self._cas = cas or Cas(redis, keys, pool)
        retry = Retry("reconciler", metrics=metrics)
        self._periodic = PeriodicTask(self.reconcile, settings.reconcile_interval_s, retry=retry, stage="reconcile")

    async def __aenter__(self) -> Reconciler:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def run(self) -> None:
        """Reconcile now, then every interval, until ``shutdown``; a failed pass is retried with backoff."""
        await self._periodic.run()

    async def shutdown(self) -> None:
        """Stop after the pass in progress. Idempotent."""
        await self._periodic.shutdown()

    async def reconcile(self) -> ReconcileReport:
        """One pass; returns what it did."""
        report = await reconcile(
            self._scripts,
            self._pool,
            self._cas,
            max_agents=self._settings.max_agents,
            older_than_s=self._settings.reconcile_interval_s,
        )
        if report:
            rebuilt = sum(outcome.result == "rebuilt" for outcome in report.rebuilt)
            logger.warning(
                "reconciled: %d of %d runs without hot state rebuilt, %d children of ended runs cancelled,"
                " %d stranded runs started, %d patch intents settled",
                rebuilt,
                len(report.rebuilt),
                len(report.cancelled),
                len(report.started),
                report.settled,
            )
        return report
