"""Which live workflow a submission's ``workflow_id`` (an id or a name) names, remembered per API process.

An entry is trusted for ``api_cache_s`` at most. A workflow created, changed or archived through any API process is
published on ``Keys.workflow_changes`` and every process drops its tenant's entries at once; the ``runs`` insert
checks the entry again (the workflow still live, at the version the entry says is latest), so a stale entry never
starts a run on what is no longer there: the submission looks the workflow up afresh instead.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from common.keys import Keys


@dataclass(frozen=True, slots=True)
class LiveWorkflow:
    """What a submission needs of a live workflow."""

    id: str
    name: str
    latest_version: int


class WorkflowCache:
    """Live workflows by (tenant, id or name), for ``ttl_s`` after the lookup."""

    def __init__(self, ttl_s: float, *, max_entries: int = 10_000) -> None:
        self._ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[LiveWorkflow, float]] = {}
        # Bumped by every ``forget_tenant``: a lookup that started before a change must not cache what it read.
        self.generation = 0

    def get(self, tenant_id: str, ref: str) -> LiveWorkflow | None:
        """The workflow cached for ``ref`` while fresh, else None."""
        entry = self._entries.get((tenant_id, ref))
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[(tenant_id, ref)]
            return None
        return entry[0]

    def put(self, tenant_id: str, ref: str, workflow: LiveWorkflow, generation: int) -> None:
        """Remember ``workflow`` for ``ref`` unless a workflow changed since ``generation`` was current."""
        if self._ttl_s <= 0 or generation != self.generation:
            return
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[(tenant_id, ref)] = (workflow, time.monotonic() + self._ttl_s)

    def forget_tenant(self, tenant_id: str) -> None:
        """Drop every entry of ``tenant_id`` (one of its workflows changed)."""
        self.generation += 1
        for key in [key for key in self._entries if key[0] == tenant_id]:
            del self._entries[key]


async def publish_workflow_change(redis: aioredis.Redis, keys: Keys, tenant_id: str) -> None:
    """Tell every API process that a workflow of ``tenant_id`` was created, changed or archived."""
    await redis.publish(keys.workflow_changes(), tenant_id)
