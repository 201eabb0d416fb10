"""Dead letters made by the engine itself: a node type whose first epoch's tokens poison the worker runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from common.keys import Keys
from common.runs.dead_letters import DeadLetter
from common.workflow.node_types import NODE_TYPES
from tests.support.eventually import eventually
from workers import NodeContext, NodeResult

# How a deployment makes a poisoned token reach wf.dlq within a second: claimed again soon, delivered twice at most.
FAST_DLQ = {"visibility_timeout_s": 0.2, "max_deliveries": 1, "shutdown_grace_s": 0.5, "cancel_poll_s": 0.05}


class PoisonConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PoisonHandler:
    """In epoch 0 returns an output that is not JSON, so the runtime (not the handler) fails and the token stays
    pending until it is dead-lettered; in later epochs (after a resume) works until its run ends."""

    node_type: ClassVar[str] = "poison"
    reports_start: ClassVar[bool] = True

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        if ctx.token.token_id.startswith("0:"):
            return NodeResult(output={"not", "json"})
        await asyncio.sleep(3600)
        return NodeResult(output=None)


@contextmanager
def poison_type() -> Iterator[None]:
    """Make ``poison`` a known node type while the block runs."""
    NODE_TYPES["poison"] = PoisonConfig
    try:
        yield
    finally:
        del NODE_TYPES["poison"]


def poisoned(node_id: str = "p") -> dict[str, Any]:
    """A workflow ``start -> <node_id>`` whose second node is dead-lettered in epoch 0."""
    nodes = [{"id": "start", "type": "noop", "config": {}}, {"id": node_id, "type": "poison", "config": {}}]
    return {"nodes": nodes, "edges": [{"from": "start", "to": node_id}]}


async def parked(redis: aioredis.Redis, keys: Keys, run_id: str, count: int = 1) -> list[DeadLetter]:
    """The dead letters of ``run_id`` once there are ``count``, oldest first."""

    async def check() -> list[DeadLetter]:
        letters = [DeadLetter.read(entry_id, fields) for entry_id, fields in await redis.xrange(keys.dlq)]
        mine = [letter for letter in letters if letter.run_id == run_id]
        assert len(mine) == count, mine
        return mine

    return await eventually(check)
