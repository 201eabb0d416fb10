"""The ``control`` worker's handler: ``workflow``, ``loop`` and ``map`` nodes start child runs and return;
the children's ends complete them later (asynchronous completion)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar, cast

import asyncpg
import redis.asyncio as aioredis
from pydantic import BaseModel

from common.errors import NodeFailed, TemplateError
from common.keys import Keys
from common.metrics import Metrics
from common.runs.cas import Cas
from common.runs.clock import redis_now_ms
from common.settings import WorkerSettings
from common.tracing import Tracing
from common.workflow.child_run_limits import ChildRunLimits, limit_error
from common.workflow.node_configs import LoopConfig, MapConfig, WorkflowNodeConfig
from common.workflow.templates import TemplateScope, render_value
from workers._handler import NodeContext, NodeResult, validated_config
from workers.control._advance import Advancer
from workers.control._bodies import Body, BodyRef, BodyResolver
from workers.control._children import ChildrenConsumer
from workers.control._state import ControlKind, ControlMeta, ControlStore

logger = logging.getLogger(__name__)

_CONFIGS: dict[str, type[BaseModel]] = {"workflow": WorkflowNodeConfig, "loop": LoopConfig, "map": MapConfig}


class ControlHandler:
    """Starts a control node's first children and leaves the rest to the ``wf.children`` consumer."""

    node_type: ClassVar[str] = "control"
    reports_start: ClassVar[bool] = True

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        store: ControlStore,
        advancer: Advancer,
        bodies: BodyResolver,
        settings: WorkerSettings,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._advancer = advancer
        self._bodies = bodies
        self._settings = settings

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        kind = ctx.node.type
        if kind not in _CONFIGS:
            raise NodeFailed(f"control worker: no node type {kind!r}", retryable=False, error_type="unknown_type")
        config = validated_config(_CONFIGS[kind], ctx.node.config)
        parent = await self._redis.hmget(self._keys.run(ctx.run_id), ["workflow_id", "workflow_name", "version"])
        depth = await self._depth(ctx.run_id) + 1
        if depth > self._settings.max_nesting_depth:
            raise NodeFailed(
                f"nesting depth: a child here would run at depth {depth}, above the limit of"
                f" {self._settings.max_nesting_depth} (AOB_MAX_NESTING_DEPTH)",
                retryable=False,
                error_type="depth_limit",
            )
        scope = TemplateScope(inputs=ctx.inputs, nodes=ctx.upstream, limits=self._settings)
        inline_ref = BodyRef(
            workflow_id=parent[0] or "",
            workflow_name=f"{parent[1] or 'run'}/{ctx.node_id}",
            version=int(parent[2] or 1),
        )
        body = await self._body(ctx, config, scope, inline_ref)
        items: list[Any] = []
        total = 1
        if isinstance(config, MapConfig):
            items = _items(config, scope, self._settings.max_map_items)
            total = len(items)
            if not items:
                return NodeResult(output={"results": [], "errors": []})
        elif isinstance(config, LoopConfig):
            total = min(config.max_iterations, self._settings.max_loop_iterations)
        # The deadline is compared with the Redis clock, like every due time.
        started_at = await redis_now_ms(self._redis)
        token = ctx.token
        meta = ControlMeta(
            kind=cast(ControlKind, kind),
            token=token,
            tenant_id=ctx.tenant_id,
            started_by=ctx.started_by,
            depth=depth,
            child_base=_child_base(token.run_id, token.node_id, token.token_id),
            config=ctx.node.config,
            inputs=ctx.inputs,
            upstream=ctx.upstream,
            body=body.ref,
            total=total,
            started_at_ms=started_at,
            deadline_ms=started_at + ctx.node.timeout_s * 1000 if ctx.node.timeout_s else None,
        )
        created = await self._store.init(meta, body.ir, items)
        logger.info(
            "run %s node %s (%s): %s %s",
            ctx.run_id,
            ctx.node_id,
            kind,
            "children of" if created else "resumed",
            body.ref.workflow_name,
        )
        await self._advancer.advance(ctx.run_id, ctx.node_id)
        return NodeResult(complete=False)

    async def _depth(self, run_id: str) -> int:
        """How deep ``run_id`` is (a top-level run is 0), following parent links up to just past the cap."""
        depth, current = 0, run_id
        while depth <= self._settings.max_nesting_depth:
            parent = await self._redis.hget(self._keys.run(current), "parent_run_id")
            if not parent:
                return depth
            depth, current = depth + 1, parent
        return depth

    async def _body(self, ctx: NodeContext, config: BaseModel, scope: TemplateScope, inline_ref: BodyRef) -> Body:
        if isinstance(config, WorkflowNodeConfig):
            return await self._bodies.stored(
                ctx.tenant_id,
                _render_ref(config.workflow, scope, "config.workflow"),
                config.version,
                at="config.workflow",
            )
        if not isinstance(config, LoopConfig | MapConfig):
            raise NodeFailed(f"control worker: unexpected config {type(config).__name__}", retryable=False)
        if isinstance(config.body, dict):
            return self._bodies.inline(config.body, inline_ref, at="config.body")
        ref = _render_ref(config.body, scope, "config.body")
        return await self._bodies.stored(ctx.tenant_id, ref, config.version, at="config.body")


def _render_ref(ref: str, scope: TemplateScope, at: str) -> str:
    try:
        rendered = render_value(ref, scope)
    except TemplateError as exc:
        raise NodeFailed(f"{at}: {exc.message}", retryable=False, error_type="template_error") from None
    if not isinstance(rendered, str) or not rendered:
        raise NodeFailed(f"{at}: expected a workflow id or name, got {rendered!r}", retryable=False)
    return rendered


def _items(config: MapConfig, scope: TemplateScope, tenant_limit: int) -> list[Any]:
    try:
        items = render_value(config.items, scope)
    except TemplateError as exc:
        raise NodeFailed(f"config.items: {exc.message}", retryable=False, error_type="template_error") from None
    if not isinstance(items, list):
        raise NodeFailed(
            f"config.items: expected a list, got {type(items).__name__}", retryable=False, error_type="invalid_items"
        )
    if len(items) > tenant_limit:
        raise NodeFailed(
            limit_error("config.items", "item count ", len(items), tenant_limit, "max_map_items"),
            retryable=False,
            error_type="quota_exceeded",
        )
    if len(items) > config.max_items:
        raise NodeFailed(
            f"config.items: {len(items)} items, above max_items ({config.max_items})",
            retryable=False,
            error_type="invalid_items",
        )
    return items


def _child_base(run_id: str, node_id: str, token_id: str) -> str:
    """The fixed prefix of one node execution's child run ids (``<base>-<index>``), so starts can repeat."""
    return hashlib.sha256(f"{run_id}\n{node_id}\n{token_id}".encode()).hexdigest()[:24]


@asynccontextmanager
async def control_handler(
    settings: WorkerSettings,
    pool: asyncpg.Pool,
    redis: aioredis.Redis,
    *,
    cas: Cas | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
) -> AsyncIterator[ControlHandler]:
    """A ``ControlHandler`` with the ``wf.children`` consumer (and its sweeper) running beside it."""
    keys = Keys(settings.key_prefix, settings.shards)
    store = ControlStore(redis, keys)
    advancer = Advancer(
        redis, keys, store, cas or Cas(redis, keys, pool), settings, pool=pool, traced=tracing is not None
    )
    consumer_id = f"ctl-{uuid.uuid4().hex[:12]}"
    consumer = ChildrenConsumer(redis, keys, store, advancer, settings, consumer_id, metrics=metrics)
    await consumer.ensure_group()
    task = asyncio.create_task(consumer.run(), name="children-consumer")
    try:
        bodies = BodyResolver(pool, settings.max_agents, ChildRunLimits.of(settings))
        yield ControlHandler(redis, keys, store, advancer, bodies, settings)
    finally:
        await consumer.shutdown()
        try:
            async with asyncio.timeout(settings.control_block_ms / 1000 + settings.shutdown_grace_s + 5):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
        logger.info("children consumer %s stopped", consumer.consumer_id)
