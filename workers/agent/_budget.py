"""The per-tenant daily token budget of agent nodes, counted in Redis per UTC day."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis

from common.keys import Keys

# A day's counter outlives its day a little, for whoever reads yesterday's figure around midnight.
_COUNTER_TTL_S = 2 * 86_400


# KEYS: the execution's charge marker, the day's counter. ARGV: tokens, TTL s. Returns the day's total.
_CHARGE_ONCE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('INCRBY', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return tonumber(redis.call('GET', KEYS[2]) or '0')
"""


def budget_day(now: datetime | None = None) -> str:
    """The UTC day a token count belongs to, as ``YYYY-MM-DD``."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


class TokenBudget:
    """Reads and adds to a tenant's tokens used today against a daily limit (0 = no agent may run)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, daily_limit: int) -> None:
        self._redis = redis
        self._keys = keys
        self.daily_limit = daily_limit
        self._charge = redis.register_script(_CHARGE_ONCE)

    async def used(self, tenant_id: str) -> int:
        """Tokens the tenant's agents used today."""
        value = await self._redis.get(self._keys.token_budget(tenant_id, budget_day()))
        return int(value or 0)

    async def remaining(self, tenant_id: str) -> int:
        """Tokens left today (never negative)."""
        return max(0, self.daily_limit - await self.used(tenant_id))

    async def add(self, tenant_id: str, tokens: int, *, charge_key: str) -> int:
        """Count ``tokens`` against today once per ``charge_key`` (one execution: its redelivery after a crash
        counts nothing more); returns the day's total."""
        key = self._keys.token_budget(tenant_id, budget_day())
        total = await self._charge(keys=[charge_key, key], args=[max(0, tokens), _COUNTER_TTL_S])
        return int(total)
