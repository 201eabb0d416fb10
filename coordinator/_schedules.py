"""The coordinator's scheduler: every ``schedule_poll_s``, due schedules start their runs (``common.schedules``)."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.retry import Retry
from common.runs.admission import Admission
from common.runs.scripts import Scripts
from common.schedules import ScheduleFirer
from common.settings import CoordinatorSettings
from common.tracing import Tracing


class Scheduler:
    """Fires due schedules until shut down. Every coordinator runs one: claims in Postgres keep each fire time to a
    single run whatever the number running."""

    def __init__(
        self,
        settings: CoordinatorSettings,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        *,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        keys = Keys(settings.key_prefix, settings.shards)
        self.firer = ScheduleFirer(
            Scripts(redis, keys),
            pool,
            Admission(redis, keys, settings),
            max_agents=settings.max_agents,
            grace_s=settings.schedule_grace_s,
            metrics=metrics,
            tracing=tracing,
        )
        retry = Retry("scheduler", metrics=metrics)
        self._periodic = PeriodicTask(self.firer.fire_due, settings.schedule_poll_s, retry=retry, stage="schedules")

    async def __aenter__(self) -> Scheduler:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def run(self) -> None:
        """Fire due schedules now, then every poll interval, until ``shutdown``."""
        await self._periodic.run()

    async def shutdown(self) -> None:
        """Stop after the poll in progress. Idempotent."""
        await self._periodic.shutdown()
