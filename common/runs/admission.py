"""Admission: the one check every request and every run start passes, the API's and the control worker's alike.

A run tree counts as a whole: a child run of a ``workflow``, ``loop`` or ``map`` node takes a slot of its
tenant's active runs and counts against the submission tier of the key that started the tree, exactly as a run
submitted through the API does. One script checks every limit and counts only when all pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.clock import redis_now_ms
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.settings import RunQuotaFields

_SCRIPT = (Path(__file__).resolve().parent / "lua" / "admit.lua").read_text()
# A run admitted but whose hot state never appeared (its start failed) stops counting after this.
_ADMITTED_GRACE_MS = 60_000
ACTIVE_RUNS = "active runs per tenant"


@dataclass(frozen=True, slots=True)
class Limit:
    """One fixed-window counter: its scope (a ``Keys.rate`` suffix), its limit per window, its name in refusals."""

    scope: str
    per_window: int
    label: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check: the tightest limit and what is left of it, or the limit that refused."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int
    refused_by: str | None = None

    @property
    def retry_after_s(self) -> int:
        """Whole seconds until the refusing limit may pass again (at least 1)."""
        return max(1, math.ceil(self.reset_ms / 1000))

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` headers (Reset in seconds from now), plus ``Retry-After`` when refused."""
        reset_s = str(self.retry_after_s)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": reset_s,
        }
        if not self.allowed:
            headers["Retry-After"] = reset_s
        return headers

    def refusal(self, window_s: int) -> str:
        """What refused, for error messages: ``active runs per tenant is limited to 100 at once``."""
        per = " at once" if self.refused_by == ACTIVE_RUNS else f" per {window_s} s"
        return f"{self.refused_by} is limited to {self.limit}{per}"


def agent_tier(agent_count: int) -> str:
    """The submission tier of a workflow with ``agent_count`` agent nodes."""
    if agent_count == 0:
        return "no_agents"
    return "few_agents" if agent_count <= 2 else "many_agents"


def submission_limit(quotas: RunQuotaFields, agent_count: int, *, key_id: str | None, tenant_id: str) -> Limit:
    """The tier counter a run start counts against: per key, or per tenant for a run no key started."""
    tier = agent_tier(agent_count)
    per_window = {
        "no_agents": quotas.rate_runs_no_agents_per_min,
        "few_agents": quotas.rate_runs_few_agents_per_min,
        "many_agents": quotas.rate_runs_many_agents_per_min,
    }[tier]
    owner = f"key:{key_id}" if key_id else f"tenant:{tenant_id}"
    return Limit(f"runs:{tier}:{owner}", per_window, f"run submissions ({tier.replace('_', ' ')})")


async def count_active(redis: aioredis.Redis, keys: Keys, run_id: str) -> None:
    """Count a run that lives again (resumed, rebuilt) in its tenant's active runs, as its admission did."""
    tenant_id = await redis.hget(keys.run(run_id), "tenant")
    if tenant_id is not None:
        await redis.zadd(keys.tenant_active_runs(tenant_id), {run_id: await redis_now_ms(redis)})


async def release_ended(redis: aioredis.Redis, keys: Keys, shards: list[int], batch: int = 500) -> int:
    """Drop the runs of ``shards`` that ended from their tenants' active runs; returns how many.

    The scripts that end a run list it in its shard's outbox (the active sets live in another slot). An item taken
    here and lost with a crash leaves a run counted until admission finds it ended (``Admission``, at the cap).
    """
    async with redis.pipeline(transaction=False) as pipe:
        for shard in shards:
            pipe.lpop(keys.shard(shard).ended_runs, batch)
        taken = await pipe.execute() if shards else []
    ended = [item for items in taken for item in items or ()]
    async with redis.pipeline(transaction=False) as pipe:
        for item in ended:
            run_id, _, tenant_id = item.partition(" ")
            pipe.zrem(keys.tenant_active_runs(tenant_id), run_id)
        if ended:
            await pipe.execute()
    return len(ended)


class Admission:
    """Counts requests and admits runs against the limits of one deployment's settings."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, quotas: RunQuotaFields) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)
        self._keys = keys
        self._quotas = quotas

    @property
    def window_s(self) -> int:
        return self._quotas.rate_window_s

    async def count(self, limits: Sequence[Limit]) -> Verdict:
        """Count one request against ``limits`` unless one of them is used up."""
        return await self._check(limits, run_id="", tenant_id="")

    async def admit_run(
        self,
        tenant_id: str,
        run_id: str,
        *,
        agent_count: int,
        started_by: str | None,
        also: Sequence[Limit] = (),
    ) -> Verdict:
        """Admit a run (top-level or child): a slot of the tenant's active runs and one start of its tier, and one
        count of each limit in ``also`` (the API's request limits: one script for both).

        Admitting a run already admitted counts nothing again.
        """
        tier = submission_limit(self._quotas, agent_count, key_id=started_by, tenant_id=tenant_id)
        # A run that started already (its hot state exists; it may have ended) was admitted before.
        if await self._redis.exists(self._keys.run(run_id)):
            window_ms = self._quotas.rate_window_s * 1000
            return Verdict(True, -1, -1, window_ms)
        verdict = await self._check([*also, tier], run_id=run_id, tenant_id=tenant_id)
        if verdict.refused_by == ACTIVE_RUNS and await self._drop_ended(tenant_id):
            verdict = await self._check([*also, tier], run_id=run_id, tenant_id=tenant_id)
        return verdict

    async def release(self, tenant_id: str, run_id: str) -> None:
        """Give back the active-run slot of a run that did not start."""
        await self._redis.zrem(self._keys.tenant_active_runs(tenant_id), run_id)

    async def _drop_ended(self, tenant_id: str) -> int:
        """Drop from the tenant's active runs those that ended, whose hot state is gone (pruned, expired, lost) and
        those admitted whose start never came (after a grace); returns how many went. Runs end in their own
        shard's slot, so the set is tidied here, when it is full, rather than by the scripts that end them."""
        key = self._keys.tenant_active_runs(tenant_id)
        members = await self._redis.zrange(key, 0, -1, withscores=True)
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id, _ in members:
                pipe.hget(self._keys.run(run_id), "status")
            statuses = await pipe.execute()
        now = await redis_now_ms(self._redis)
        ended = [
            run_id
            for (run_id, admitted_ms), status in zip(members, statuses, strict=True)
            if (status is not None and status in TERMINAL_RUN_STATUSES)
            or (status is None and now - admitted_ms > _ADMITTED_GRACE_MS)
        ]
        if ended:
            await self._redis.zrem(key, *ended)
        return len(ended)

    async def _check(self, limits: Sequence[Limit], *, run_id: str, tenant_id: str) -> Verdict:
        keys = [self._keys.rate(limit.scope) for limit in limits]
        if run_id:
            keys.append(self._keys.tenant_active_runs(tenant_id))
        args: list[str | int] = [
            self._quotas.rate_window_s * 1000,
            run_id,
            self._quotas.max_active_runs_per_tenant,
            *(limit.per_window for limit in limits),
        ]
        allowed, index, limit, remaining, reset_ms = await self._script(keys=keys, args=args)
        if allowed:
            return Verdict(True, int(limit), int(remaining), int(reset_ms))
        refused_by = ACTIVE_RUNS if index == 0 else limits[int(index) - 1].label
        return Verdict(False, int(limit), 0, int(reset_ms), refused_by)
