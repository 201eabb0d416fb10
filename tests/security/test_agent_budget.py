"""A tenant's daily agent token budget holds under concurrent agents: each model call reserves before it is made."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis
from pydantic import SecretStr

from common.keys import Keys
from devstack.llm_scripted import ScriptedLLM
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from workers.agent import AgentHandler, TokenBudget

BUDGET = 12_000
AGENTS = 4
USAGE = {"prompt_tokens": 1_000, "completion_tokens": 1_000}
# Each agent reads its context, then finishes: two calls of 2,000 tokens, 4,000 in all, 16,000 for four.
# A call reserves its prompt's estimate (about 1,000) and the default reply cap (4,096): about 5,100 tokens.
STEPS = [
    {"tool_calls": [{"name": "get_context", "arguments": {}}], "usage": USAGE},
    {"tool_calls": [{"name": "finish", "arguments": {"result": "ok"}}], "usage": USAGE},
]


async def test_concurrent_agents_of_one_tenant_cannot_overshoot_its_budget(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    async with ScriptedLLM(STEPS, mode="conversation") as llm:
        agent = deployment.replace(
            llm_base_url=llm.base_url,
            llm_api_key=SecretStr("budget-test-key"),
            agent_daily_token_budget=BUDGET,
        )
        handler = AgentHandler(agent.worker(), pg_pool, redis)
        async with Engine(agent, redis, handlers=[handler], pool=pg_pool) as engine:
            definition = {"nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "go"}}], "edges": []}
            runs = [await engine.submit(definition) for _ in range(AGENTS)]
            ended = await asyncio.gather(*(engine.wait_ended(run_id, timeout_s=60) for run_id in runs))
            errors = [(await engine.node_states(run_id))["agent"].get("error") for run_id in runs]
    used = await TokenBudget(redis, keys, BUDGET).used("tenant-test")
    # Reservations cover each call (the provider honours max_tokens here), so nothing is spent beyond the budget.
    assert used <= BUDGET, (used, ended)
    # Which agents finish depends on how their calls interleave (in-flight reservations can refuse every agent's
    # second call); what must hold is that the budget was spent on calls, not refused whole, and nothing hung.
    assert used >= 2 * sum(USAGE.values()), (used, errors)
    assert all(status in ("succeeded", "failed") for status in ended), ended
    refused = [error for error in errors if error is not None]
    assert refused and all(error["type"] == "budget_exceeded" for error in refused), refused
    assert all("budget" in error["message"] for error in refused)
