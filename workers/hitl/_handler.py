"""The ``hitl`` node: opens an approval and returns without completing; the decision completes it later."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.metrics import Metrics
from common.runs.approval_store import NewApproval, open_approval
from common.runs.approvals import apply_timeout, cancel_approvals
from common.runs.clock import redis_now_ms
from common.runs.messages import Token
from common.runs.scripts import Scripts
from common.settings import WorkerSettings
from common.workflow.node_configs import HitlConfig
from workers._handler import NodeContext, NodeResult, validated_config
from workers.hitl._sweeper import ApprovalSweeper

logger = logging.getLogger(__name__)


class HitlHandler:
    """Runs ``hitl`` nodes and their approval timeouts (tokens with ``purpose='approval_timeout'``)."""

    node_type: ClassVar[str] = "hitl"
    # The node shows ``waiting`` through its own script, so the runtime's start report is not needed.
    reports_start: ClassVar[bool] = False

    def __init__(self, pool: asyncpg.Pool, redis: aioredis.Redis, keys: Keys) -> None:
        self._pool = pool
        self._redis = redis
        self._keys = keys
        self._scripts = Scripts(redis, keys)

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        config = validated_config(HitlConfig, ctx.config)
        if ctx.token.purpose == "approval_timeout":
            if ctx.token.approval_id is not None:
                await apply_timeout(self._pool, self._redis, self._keys, ctx.token.approval_id, config.on_timeout)
            return NodeResult(complete=False)
        await self._request(ctx, config)
        return NodeResult(complete=False)

    async def _request(self, ctx: NodeContext, config: HitlConfig) -> None:
        token = ctx.token
        approval_id = uuid.uuid4().hex
        # Expiry by the Redis clock, which the timeout token's due time is compared with.
        now = datetime.fromtimestamp(await redis_now_ms(self._redis) / 1000, UTC)
        expires_at = now + timedelta(seconds=config.timeout_s) if config.timeout_s else None
        timeout_token = None
        if expires_at is not None:
            timeout_token = Token(
                token_id=token.token_id,
                run_id=token.run_id,
                node_id=token.node_id,
                type=self.node_type,
                attempt=token.attempt,
                ir_version=token.ir_version,
                purpose="approval_timeout",
                approval_id=approval_id,
            ).model_dump_json()
        # A redelivered token gets back the row its first delivery opened, with that row's id and timeout.
        row = await open_approval(
            self._pool,
            NewApproval(
                id=approval_id,
                tenant_id=ctx.tenant_id,
                run_id=token.run_id,
                node_id=token.node_id,
                token_id=token.token_id,
                attempt=token.attempt,
                title=config.title,
                description=config.description,
                approvers=config.approvers or [],
                required_approvals=config.required_approvals,
                allow_self_approval=config.allow_self_approval,
                created_by=ctx.started_by,
                expires_at=expires_at,
                timeout_token=timeout_token,
            ),
        )
        approval = row.approval
        announced = {
            "approval_id": approval.id,
            "title": approval.title,
            "description": approval.description,
            "expires_at": approval.expires_at.isoformat() if approval.expires_at else None,
        }
        due_ms = int(approval.expires_at.timestamp() * 1000) if approval.expires_at else 0
        outcome = await self._scripts.run_script(
            "request_approval",
            token.run_id,
            token.node_id,
            token.attempt,
            token.token_id,
            json.dumps(announced),
            row.timeout_token or "",
            due_ms,
        )
        logger.info("approval %s for run %s node %s: %s", approval.id, token.run_id, token.node_id, outcome)
        if outcome in ("ended", "missing"):
            # The run ended while the approval was being opened; a cancel before the insert missed it.
            await cancel_approvals(self._pool, self._redis, self._keys, token.run_id)


@asynccontextmanager
async def hitl_handler(
    settings: WorkerSettings, pool: asyncpg.Pool, redis: aioredis.Redis, *, metrics: Metrics | None = None
) -> AsyncIterator[HitlHandler]:
    """A ``HitlHandler`` with its sweeper running beside it (lost completions, approvals of ended runs)."""
    keys = Keys(settings.key_prefix, settings.shards)
    sweeper = ApprovalSweeper(pool, redis, keys, settings, metrics=metrics)
    async with sweeper:
        yield HitlHandler(pool, redis, keys)
