"""Recording what handlers execute, to check afterwards that no token ran in a run's earlier epoch.

In process the executions go to a list; the chaos tests' worker processes push them to a Redis list instead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import ClassVar

import redis.asyncio as aioredis

from workers import NodeContext, NodeHandler, NodeResult


@dataclass(frozen=True)
class Execution:
    """One handler call: the token it ran and the run's epoch and status when the handler started."""

    token_id: str
    run_id: str
    node_id: str
    run_epoch: int
    run_status: str | None
    node_type: str = ""

    @property
    def token_epoch(self) -> int:
        return int(self.token_id.split(":", 1)[0])


ExecutionSink = Callable[[Execution], Awaitable[None]]


class RecordingHandler:
    """Wraps a handler and hands ``sink`` an ``Execution`` for every token it is given, before running it."""

    node_type: ClassVar[str]
    reports_start: ClassVar[bool]

    def __new__(cls, inner: NodeHandler, sink: ExecutionSink) -> RecordingHandler:
        # The runtime reads node_type and reports_start from the class, as handlers declare them: one subclass each.
        sub = type(f"Recording{type(inner).__name__}", (cls,), {})
        sub.node_type = inner.node_type
        sub.reports_start = inner.reports_start
        return super().__new__(sub)

    def __init__(self, inner: NodeHandler, sink: ExecutionSink) -> None:
        self.inner = inner
        self.sink = sink

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        epoch, status = await ctx.redis.hmget(ctx.keys.run(ctx.run_id), ["epoch", "status"])
        execution = Execution(ctx.token.token_id, ctx.run_id, ctx.node_id, int(epoch or 0), status, ctx.node.type)
        await self.sink(execution)
        return await self.inner(ctx)


def executions_key(key_prefix: str) -> str:
    """Where worker processes of a test deployment push their executions (a test's key, not the engine's)."""
    return f"{key_prefix}test:executions"


def redis_sink(redis: aioredis.Redis, key: str) -> ExecutionSink:
    async def push(execution: Execution) -> None:
        await redis.rpush(key, json.dumps(asdict(execution)))

    return push


async def load_executions(redis: aioredis.Redis, key: str) -> list[Execution]:
    return [Execution(**json.loads(raw)) for raw in await redis.lrange(key, 0, -1)]
