"""Which live workflow a submission's ``workflow_id`` (an id or a name) names, remembered per API process.

An entry is trusted for ``api_cache_s`` at most. A workflow created, changed or archived through any API process is
published on ``Keys.workflow_changes`` and every process drops its tenant's entries at once; the ``runs`` insert
checks the entry again (the workflow still live, at the version the entry says is latest), so a stale entry never
starts a run on what is no longer there: the submission looks the workflow up afresh instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis.asyncio as aioredis

from common.keys import Keys
from common.ttl_cache import TtlCache


@dataclass(frozen=True, slots=True)
class LiveWorkflow:
    """What a submission needs of a live workflow."""

    id: str
    name: str
    latest_version: int


class WorkflowCache(TtlCache[tuple[str, str], LiveWorkflow]):
    """Live workflows by (tenant, id or name), for ``ttl_s`` after the lookup."""

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every entry of ``tenant_id`` (one of its workflows changed)."""
        self.forget(lambda key, _: key[0] == tenant_id)


async def publish_workflow_change(redis: aioredis.Redis, keys: Keys, tenant_id: str) -> None:
    """Tell every API process that a workflow of ``tenant_id`` was created, changed or archived."""
    await redis.publish(keys.workflow_changes(), tenant_id)
