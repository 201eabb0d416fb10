"""A node type for engine tests whose behaviour each node's config scripts: fail some attempts, take time."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from common.errors import NodeFailed
from common.workflow.node_types import NODE_TYPES
from workers import NodeContext, NodeResult


class ScriptedConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fail_attempts: int = 0
    sleep_s: float = 0.0
    output: Any = None
    retryable: bool = True


class ScriptedHandler:
    """Fails attempts up to ``fail_attempts``, sleeps ``sleep_s``, then returns ``output``."""

    node_type: ClassVar[str] = "scripted"
    reports_start: ClassVar[bool] = True

    def __init__(self) -> None:
        self.cancelled: list[str] = []

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        config = ScriptedConfig.model_validate(ctx.config)
        try:
            await asyncio.sleep(config.sleep_s)
        except asyncio.CancelledError:
            if ctx.cancelled.is_set():
                self.cancelled.append(ctx.node_id)
            raise
        if ctx.token.attempt <= config.fail_attempts:
            raise NodeFailed(f"scripted failure on attempt {ctx.token.attempt}", retryable=config.retryable)
        return NodeResult(output=config.output)


@contextmanager
def scripted_type() -> Iterator[None]:
    """Make ``scripted`` a known node type while the block runs."""
    NODE_TYPES["scripted"] = ScriptedConfig
    try:
        yield
    finally:
        del NODE_TYPES["scripted"]
