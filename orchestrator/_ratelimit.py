"""Rate limits (global, per key, run-submission tiers by agent count) and the per-tenant active-run cap."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

from common.auth import Principal
from common.keys import Keys, KeyTemplate
from common.settings import RateLimitFields
from orchestrator._errors import ApiError

_SCRIPT = (Path(__file__).resolve().parent / "lua" / "rate_limit.lua").read_text()
# A run reserved in the active set but whose hot state never appeared (its start failed) stops counting after this.
_RESERVATION_GRACE_MS = 60_000


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one check: the tightest limit and what is left of it."""

    allowed: bool
    limit: int
    remaining: int
    reset_ms: int
    refused_by: str | None = None

    def headers(self) -> dict[str, str]:
        """``X-RateLimit-*`` headers (Reset in seconds from now), plus ``Retry-After`` when refused."""
        reset_s = str(max(1, math.ceil(self.reset_ms / 1000)))
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.remaining)),
            "X-RateLimit-Reset": reset_s,
        }
        if not self.allowed:
            headers["Retry-After"] = reset_s
        return headers


def agent_tier(agent_count: int) -> str:
    """The submission tier of a workflow with ``agent_count`` agent nodes."""
    if agent_count == 0:
        return "no_agents"
    return "few_agents" if agent_count <= 2 else "many_agents"


class RateLimiter:
    """Runs the rate-limit script; raises 429 ``ApiError`` when a limit refuses."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: RateLimitFields) -> None:
        self._redis = redis
        self._script = redis.register_script(_SCRIPT)
        self._keys = keys
        self._settings = settings
        # The script checks reserved runs' status in their hashes: it names them from this template.
        self._run_key = json.dumps(KeyTemplate.of(keys.run).for_lua())

    async def check_request(self, principal: Principal) -> Verdict:
        """Count one request against the global and per-key limits."""
        return await self._check(self._request_limits(principal))

    async def check_submission(self, principal: Principal, agent_count: int, run_id: str) -> Verdict:
        """Count one run submission: its agent tier per key, and reserve a slot of the tenant's active runs."""
        s = self._settings
        tier = agent_tier(agent_count)
        per_min = {
            "no_agents": s.rate_runs_no_agents_per_min,
            "few_agents": s.rate_runs_few_agents_per_min,
            "many_agents": s.rate_runs_many_agents_per_min,
        }[tier]
        limits = [(f"runs:{tier}:key:{principal.key_id}", per_min, f"run submissions ({tier.replace('_', ' ')})")]
        return await self._check(limits, run_id=run_id, tenant_id=principal.tenant_id)

    async def release(self, tenant_id: str, run_id: str) -> None:
        """Give back an active-run slot reserved for a run that did not start."""
        await self._redis.zrem(self._keys.tenant_active_runs(tenant_id), run_id)

    def _request_limits(self, principal: Principal) -> list[tuple[str, int, str]]:
        s = self._settings
        return [
            ("global", s.rate_global_per_min, "requests (all clients)"),
            (f"key:{principal.key_id}", s.rate_key_per_min, "requests per API key"),
        ]

    async def _check(self, limits: list[tuple[str, int, str]], *, run_id: str = "", tenant_id: str = "") -> Verdict:
        keys = [self._keys.rate(scope) for scope, _, _ in limits]
        if run_id:
            keys.append(self._keys.tenant_active_runs(tenant_id))
        args: list[str | int] = [
            self._settings.rate_window_s * 1000,
            self._run_key,
            run_id,
            self._settings.max_active_runs_per_tenant,
            _RESERVATION_GRACE_MS,
            *(limit for _, limit, _ in limits),
        ]
        allowed, index, limit, remaining, reset_ms = await self._script(keys=keys, args=args)
        if allowed:
            return Verdict(True, int(limit), int(remaining), int(reset_ms))
        refused_by = "active runs per tenant" if index == 0 else limits[int(index) - 1][2]
        verdict = Verdict(False, int(limit), 0, int(reset_ms), refused_by)
        raise ApiError(
            429,
            f"rate limit: {refused_by} is limited to {limit}"
            + (" at once" if index == 0 else f" per {self._settings.rate_window_s} s")
            + f"; retry in {verdict.headers()['Retry-After']} s",
            details={"limit": int(limit), "scope": refused_by, "retry_after_s": int(verdict.headers()["Retry-After"])},
            headers=verdict.headers(),
        )
