"""The per-tenant daily token budget of agent nodes, counted in Redis per UTC day.

Every model call reserves its worst case before it is made and settles to what the provider reported after, both
atomically, so concurrent agents of one tenant cannot spend beyond the budget by more than one call's under-estimate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import redis.asyncio as aioredis

from common.keys import Keys

# A day's counter outlives its day a little, for whoever reads yesterday's figure around midnight.
_COUNTER_TTL_S = 2 * 86_400

# KEYS: the day's counter. ARGV: tokens, limit, TTL s. Returns {1, total} when reserved, {0, total} when refused.
_RESERVE = """
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return {0, used}
end
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return {1, total}
"""

# KEYS: the day's counter, the execution's ledger. ARGV: tokens reserved, the delivery's usage so far, TTL s.
# The ledger keeps what the execution was charged; a redelivery is charged only beyond it, so the same work done
# again after a crash is not counted twice. The reservation is given back in the same step.
_SETTLE = """
local charged = tonumber(redis.call('GET', KEYS[2]) or '0')
local extra = math.max(0, tonumber(ARGV[2]) - charged)
redis.call('SET', KEYS[2], charged + extra, 'EX', ARGV[3])
local total = redis.call('INCRBY', KEYS[1], extra - tonumber(ARGV[1]))
redis.call('EXPIRE', KEYS[1], ARGV[3])
return total
"""


def budget_day(now: datetime | None = None) -> str:
    """The UTC day a token count belongs to, as ``YYYY-MM-DD``."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Reservation:
    """Tokens held for one model call on one day's counter (settled on that day even after midnight)."""

    tenant_id: str
    day: str
    tokens: int


class BudgetExceeded(Exception):
    """A call's reservation does not fit in what is left of the tenant's budget today."""

    def __init__(self, tenant_id: str, wanted: int, used: int, limit: int) -> None:
        super().__init__(
            f"tenant {tenant_id!r} is over its daily agent token budget: a model call needs up to {wanted} tokens,"
            f" {max(0, limit - used)} of {limit} are left today (UTC)"
        )


class TokenBudget:
    """Reserves, settles and reads a tenant's tokens today against a daily limit (0 = no agent may run)."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, daily_limit: int) -> None:
        self._redis = redis
        self._keys = keys
        self.daily_limit = daily_limit
        self._reserve = redis.register_script(_RESERVE)
        self._settle = redis.register_script(_SETTLE)

    async def used(self, tenant_id: str) -> int:
        """Tokens the tenant's agents used today, reservations of calls in flight included."""
        value = await self._redis.get(self._keys.token_budget(tenant_id, budget_day()))
        return int(value or 0)

    async def remaining(self, tenant_id: str) -> int:
        """Tokens left today (never negative)."""
        return max(0, self.daily_limit - await self.used(tenant_id))

    async def reserve(self, tenant_id: str, tokens: int) -> Reservation:
        """Hold ``tokens`` for one call; raise ``BudgetExceeded`` when they do not fit under today's limit."""
        day = budget_day()
        key = self._keys.token_budget(tenant_id, day)
        granted, used = await self._reserve(keys=[key], args=[tokens, self.daily_limit, _COUNTER_TTL_S])
        if not int(granted):
            raise BudgetExceeded(tenant_id, tokens, int(used), self.daily_limit)
        return Reservation(tenant_id, day, tokens)

    async def settle(self, reservation: Reservation, *, delivery_tokens: int, charge_key: str) -> int:
        """Give back ``reservation`` and charge the execution up to ``delivery_tokens`` (what this delivery used so
        far, this call included) once per ``charge_key``; returns the day's total."""
        key = self._keys.token_budget(reservation.tenant_id, reservation.day)
        total = await self._settle(
            keys=[key, charge_key], args=[reservation.tokens, max(0, delivery_tokens), _COUNTER_TTL_S]
        )
        return int(total)
