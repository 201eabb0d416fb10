"""The token budget on the real Redis: reservations refused past the limit, settled to the usage, and an execution
charged once however often it is delivered."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from workers.agent import TokenBudget
from workers.agent._budget import BudgetExceeded


async def test_a_reservation_past_the_limit_is_refused_and_settling_gives_back_the_rest(
    redis: aioredis.Redis, keys: Keys
) -> None:
    budget = TokenBudget(redis, keys, 1_000)
    held = await budget.reserve("t1", 600)
    assert await budget.used("t1") == 600
    with pytest.raises(BudgetExceeded, match=r"needs up to 500 tokens, 400 of 1000 are left today"):
        await budget.reserve("t1", 500)
    assert await budget.settle(held, delivery_tokens=150, charge_key=keys.token_charge("t1", "0:agent:1", "r1")) == 150
    assert await budget.remaining("t1") == 850


async def test_an_execution_is_charged_once_however_often_it_is_delivered(redis: aioredis.Redis, keys: Keys) -> None:
    budget = TokenBudget(redis, keys, 1_000)
    charge = keys.token_charge("t1", "0:agent:1", "r1")
    first = await budget.reserve("t1", 100)
    assert await budget.settle(first, delivery_tokens=15, charge_key=charge) == 15
    # A worker that died after the call is redelivered the execution, which makes the same call again.
    again = await budget.reserve("t1", 100)
    assert await budget.settle(again, delivery_tokens=15, charge_key=charge) == 15
    further = await budget.reserve("t1", 100)
    assert await budget.settle(further, delivery_tokens=20, charge_key=charge) == 20
    other = await budget.reserve("t1", 100)
    assert await budget.settle(other, delivery_tokens=20, charge_key=keys.token_charge("t1", "0:agent:2", "r1")) == 40


async def test_concurrent_reservations_never_pass_the_limit(redis: aioredis.Redis, keys: Keys) -> None:
    budget = TokenBudget(redis, keys, 1_000)

    async def reserve() -> bool:
        try:
            await budget.reserve("t1", 300)
        except BudgetExceeded:
            return False
        return True

    granted = await asyncio.gather(*(reserve() for _ in range(20)))
    assert sum(granted) == 3 and await budget.used("t1") == 900
