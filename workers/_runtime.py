"""The worker runtime every node type shares: consume tokens, run handlers, report completions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ResponseError

from common.cas import Cas
from common.errors import NodeFailed, TemplateError
from common.ir_cache import IrCache
from common.keys import Keys
from common.logging import log_context
from common.messages import TERMINAL_RUN_STATUSES, CompletionSignal, NodeError, Token
from common.metrics import Metrics
from common.scripts import Scripts, now_ms
from common.settings import EngineSettings
from common.templates import TemplateScope, referenced_nodes, render_value
from workers._handler import NodeContext, NodeHandler, NodeResult
from workers._reclaim import Reclaimer

logger = logging.getLogger(__name__)


class RunEnded(Exception):
    """The run ended (cancelled, failed, timed out) while a handler was working."""


class Worker:
    """Consumes ``wf.tasks.<type>`` for its handlers' types with bounded concurrency."""

    def __init__(
        self,
        settings: EngineSettings,
        redis: aioredis.Redis,
        handlers: Sequence[NodeHandler],
        *,
        cas: Cas | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self._redis = redis
        self._keys = Keys(settings.key_prefix)
        self._scripts = Scripts(redis, self._keys)
        self._cas = cas or Cas(redis, self._keys)
        self._irs = IrCache(redis, self._keys)
        self._handlers = {self._keys.tasks(h.node_type): h for h in handlers}
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._active: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._reclaimer = Reclaimer(self, redis, settings)
        # Each stream's reader takes at most its share of the slots, so one idle stream cannot starve another.
        self._batch_cap = max(1, settings.worker_concurrency // max(1, len(self._handlers)))
        metrics = metrics or Metrics()
        self._done = metrics.counter("aob_worker_tokens_total", "tokens handled", ["type", "outcome"])
        self._exec = metrics.histogram("aob_worker_exec_seconds", "handler time", ["type"])

    @property
    def streams(self) -> list[str]:
        return list(self._handlers)

    def group(self, stream: str) -> str:
        return self._keys.workers_group(self._handlers[stream].node_type)

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def ensure_groups(self) -> None:
        """Create each stream's consumer group (and the stream) if missing."""
        for stream in self._handlers:
            try:
                await self._redis.xgroup_create(stream, self.group(stream), id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def run(self) -> None:
        """Serve until ``shutdown``, then drain in-flight work for the grace period."""
        await self.ensure_groups()
        logger.info("worker %s consuming %s", self.id, ", ".join(self._handlers))
        readers = [asyncio.create_task(self._read_loop(stream), name=f"read:{stream}") for stream in self._handlers]
        readers.append(asyncio.create_task(self._reclaimer.run(self._stopping), name="reclaim"))
        try:
            await asyncio.gather(*readers)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            await self._drain()

    async def shutdown(self) -> None:
        """Stop taking tokens; in-flight ones get the grace period. Idempotent."""
        if not self._stopping.is_set():
            logger.info("worker %s stopping: %d in flight", self.id, len(self._active))
            self._stopping.set()

    async def _drain(self) -> None:
        if not self._active:
            return
        _, pending = await asyncio.wait(self._active, timeout=self.settings.shutdown_grace_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            # Their entries stay pending in the group; a peer reclaims them after the visibility timeout.
            logger.warning("worker %s left %d tokens to be reclaimed", self.id, len(pending))

    async def _read_loop(self, stream: str) -> None:
        group = self.group(stream)
        while not self._stopping.is_set():
            await self._slots.acquire()
            free = 1
            while not self._slots.locked() and free < self._batch_cap:
                await self._slots.acquire()
                free += 1
            try:
                reply = await self._redis.xreadgroup(
                    group, self.id, {stream: ">"}, count=free, block=self.settings.worker_block_ms
                )
            except BaseException:
                for _ in range(free):
                    self._slots.release()
                raise
            entries = reply[0][1] if reply else []
            for _ in range(free - len(entries)):
                self._slots.release()
            for entry_id, fields in entries:
                self.spawn(stream, entry_id, fields)

    def spawn(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        """Handle one stream entry in its own task; the caller holds a slot that the task releases."""
        task = asyncio.create_task(self._handle_entry(stream, entry_id, fields))
        self._active.add(task)
        task.add_done_callback(self._active.discard)

    async def acquire_slot(self) -> None:
        """Wait for a free handler slot (released by the task ``spawn`` starts)."""
        await self._slots.acquire()

    async def _handle_entry(self, stream: str, entry_id: str, fields: dict[str, str] | None) -> None:
        try:
            if not fields or "t" not in fields:
                await self._ack(stream, entry_id)
                return
            try:
                token = Token.model_validate_json(fields["t"])
            except ValidationError:
                logger.error("malformed token %s on %s moved to the dead-letter stream", entry_id, stream)
                await self.dead_letter(stream, entry_id, fields, None, "malformed token")
                return
            with log_context(run_id=token.run_id, node_id=token.node_id):
                await self._handle_token(stream, entry_id, token)
        except Exception:
            # The entry stays pending: after the visibility timeout a worker (maybe this one) tries again.
            logger.exception("token %s on %s failed in the runtime", entry_id, stream)
        finally:
            self._slots.release()

    async def _handle_token(self, stream: str, entry_id: str, token: Token) -> None:
        handler = self._handlers[stream]
        status, tenant, inputs_raw, started_by, ir_version = await self._redis.hmget(
            self._keys.run(token.run_id), ["status", "tenant", "inputs", "started_by", "ir_version"]
        )
        if status is None or status in TERMINAL_RUN_STATUSES:
            await self._ack(stream, entry_id)
            self._done.labels(handler.node_type, "dropped").inc()
            return
        entry = await self._irs.get(token.run_id, int(ir_version or 0))
        if entry is None or token.node_id not in entry.ir.nodes:
            await self._ack(stream, entry_id)
            return
        node = entry.ir.nodes[token.node_id]
        predecessors = [src for src, edges in entry.ir.successors.items() if any(e.to == node.id for e in edges)]
        started_at = now_ms()
        signal: dict[str, Any] = {
            "run_id": token.run_id,
            "node_id": token.node_id,
            "token_id": token.token_id,
            "attempt": token.attempt,
            "worker_id": self.id,
            "started_at_ms": started_at,
        }
        try:
            inputs = json.loads(inputs_raw or "{}")
            upstream = await self._load_outputs(token.run_id, set(predecessors) | referenced_nodes(node.config))
            scope = TemplateScope(inputs=inputs, nodes=upstream)
            try:
                config = render_value(node.config, scope)
            except TemplateError as exc:
                raise NodeFailed(f"config: {exc.message}", retryable=False, error_type="template_error") from None
            ctx = NodeContext(
                token=token,
                node=node,
                config=config,
                inputs=inputs,
                upstream=upstream,
                predecessors=predecessors,
                tenant_id=tenant or "",
                started_by=started_by,
                redis=self._redis,
                keys=self._keys,
                worker_id=self.id,
            )
            if handler.reports_start:
                await self._scripts.run_script("mark_started", token.run_id, token.node_id, token.attempt, self.id)
            result = await self._run_handler(handler, ctx, stream, entry_id)
        except RunEnded:
            await self._ack(stream, entry_id)
            self._done.labels(handler.node_type, "cancelled").inc()
            return
        except NodeFailed as exc:
            signal.update(
                status="failed", error=NodeError(type=exc.error_type, message=exc.message, retryable=exc.retryable)
            )
        except Exception as exc:
            logger.exception("handler for %s crashed", token.node_id)
            signal.update(status="failed", error=NodeError(type="crash", message=f"{type(exc).__name__}: {exc}"))
        else:
            if not result.complete:
                await self._ack(stream, entry_id)
                self._done.labels(handler.node_type, "deferred").inc()
                return
            output_ref = await self._cas.store_output(result.output, self.settings.inline_output_max_bytes)
            signal.update(status="succeeded", output_ref=output_ref, branch=result.branch)
        signal["ended_at_ms"] = now_ms()
        self._exec.labels(handler.node_type).observe((signal["ended_at_ms"] - started_at) / 1000)
        self._done.labels(handler.node_type, signal["status"]).inc()
        await asyncio.shield(self._complete(stream, entry_id, CompletionSignal(**signal)))

    async def _run_handler(self, handler: NodeHandler, ctx: NodeContext, stream: str, entry_id: str) -> NodeResult:
        timeout_s = ctx.node.timeout_s
        if not handler.reports_start and timeout_s is None:
            # Instant built-ins: no watcher, no claim heartbeat.
            return await handler(ctx)
        work = asyncio.create_task(handler(ctx))
        watcher = asyncio.create_task(self._watch(ctx, work, stream, entry_id))
        try:
            return await asyncio.wait_for(asyncio.shield(work), timeout_s) if timeout_s else await work
        except TimeoutError:
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
            raise NodeFailed(f"timeout after {timeout_s:g}s", retryable=True, error_type="timeout") from None
        except asyncio.CancelledError:
            if ctx.cancelled.is_set():
                raise RunEnded from None
            work.cancel()
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher

    async def _watch(self, ctx: NodeContext, work: asyncio.Task[NodeResult], stream: str, entry_id: str) -> None:
        """Tell the handler when its run ends, and keep the claim on its entry alive."""
        interval_s = min(self.settings.cancel_poll_s, self.settings.visibility_timeout_s / 3)
        group = self.group(stream)
        while not work.done():
            await asyncio.sleep(interval_s)
            status = await self._redis.hget(self._keys.run(ctx.run_id), "status")
            if status is None or status in TERMINAL_RUN_STATUSES:
                ctx.cancelled.set()
                work.cancel()
                return
            await self._redis.xclaim(stream, group, self.id, 0, [entry_id], justid=True)

    async def _load_outputs(self, run_id: str, node_ids: set[str]) -> dict[str, Any]:
        if not node_ids:
            return {}
        ordered = sorted(node_ids)
        refs = await self._redis.hmget(self._keys.ctx(run_id), ordered)
        return {nid: await self._cas.load_output(ref) for nid, ref in zip(ordered, refs, strict=True) if ref}

    async def _complete(self, stream: str, entry_id: str, signal: CompletionSignal) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.rpush(self._keys.completion_signals, signal.model_dump_json(exclude_none=True))
            pipe.xack(stream, self.group(stream), entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def _ack(self, stream: str, entry_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, self.group(stream), entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()

    async def dead_letter(
        self, stream: str, entry_id: str, fields: dict[str, str], token: Token | None, reason: str
    ) -> None:
        """Move an entry to ``wf.dlq``; its node fails (no retry) when the token is readable."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self._keys.dlq, {"stream": stream, "entry_id": entry_id, "reason": reason, **fields})
            if token is not None:
                signal = CompletionSignal(
                    run_id=token.run_id,
                    node_id=token.node_id,
                    token_id=token.token_id,
                    attempt=token.attempt,
                    status="failed",
                    error=NodeError(type="delivery_limit", message=reason, retryable=False),
                    worker_id=self.id,
                    ended_at_ms=now_ms(),
                )
                pipe.rpush(self._keys.completion_signals, signal.model_dump_json(exclude_none=True))
            pipe.xack(stream, self.group(stream), entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
