"""The API's side of admission: requests count against the global, per-tenant and per-key limits, run
submissions against the tenant's active runs and their tier; a refusal is a 429 naming the limit."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.auth import Principal
from common.keys import Keys
from common.runs.admission import Admission, Limit, Verdict
from common.settings import ApiSettings
from orchestrator._errors import ApiError


class RateLimiter:
    """Counts requests and admits runs; raises 429 ``ApiError`` when a limit refuses."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, settings: ApiSettings) -> None:
        self._admission = Admission(redis, keys, settings)
        self._settings = settings

    def _request_limits(self, principal: Principal) -> list[Limit]:
        s = self._settings
        return [
            Limit("global", s.rate_global_per_min, "requests (all clients)"),
            Limit(f"tenant:{principal.tenant_id}", s.rate_tenant_per_min, "requests per tenant"),
            Limit(f"key:{principal.key_id}", s.rate_key_per_min, "requests per API key"),
        ]

    async def check_request(self, principal: Principal) -> Verdict:
        """Count one request against the global, per-tenant and per-key limits (one script call)."""
        return _allowed(await self._admission.count(self._request_limits(principal)), self._admission.window_s)

    async def check_submission(
        self, principal: Principal, agent_count: int, run_id: str, *, with_request: bool = False
    ) -> Verdict:
        """Admit one run submission: a slot of the tenant's active runs and one start of its agent tier; with
        ``with_request``, the request's own count too, in the same script call."""
        verdict = await self._admission.admit_run(
            principal.tenant_id,
            run_id,
            agent_count=agent_count,
            started_by=principal.key_id,
            also=self._request_limits(principal) if with_request else (),
        )
        return _allowed(verdict, self._admission.window_s)

    async def release(self, tenant_id: str, run_id: str) -> None:
        """Give back an active-run slot reserved for a run that did not start."""
        await self._admission.release(tenant_id, run_id)


def _allowed(verdict: Verdict, window_s: int) -> Verdict:
    if verdict.allowed:
        return verdict
    retry_after_s = verdict.retry_after_s
    raise ApiError(
        429,
        f"rate limit: {verdict.refusal(window_s)}; retry in {retry_after_s} s",
        details={"limit": verdict.limit, "scope": verdict.refused_by, "retry_after_s": retry_after_s},
        headers=verdict.headers(),
    )


class DeferredCount:
    """A request its route counts itself, when it knows more: a run submission counts it with the run's admission
    (one script call instead of two). Whatever ends the request first counts it, once."""

    def __init__(self, limiter: RateLimiter, principal: Principal) -> None:
        self._limiter = limiter
        self._principal = principal
        self.verdict: Verdict | None = None
        self.done = False

    async def alone(self) -> None:
        """Count the request by itself (an answer that admits no run); 429 ``ApiError`` over a limit."""
        if self.done:
            return
        self.done = True
        self.verdict = await self._limiter.check_request(self._principal)

    async def with_admission(self, agent_count: int, run_id: str) -> None:
        """Count the request and admit run ``run_id`` in one script call; 429 ``ApiError`` over any limit."""
        self.done = True
        self.verdict = await self._limiter.check_submission(self._principal, agent_count, run_id, with_request=True)
