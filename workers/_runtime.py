"""The worker runtime every node type shares: consume tokens, run handlers, report completions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from common.errors import NodeFailed
from common.keys import Keys
from common.logging import log_context
from common.metrics import Metrics
from common.runs.cas import Cas
from common.runs.ir_cache import IrCache
from common.runs.messages import TERMINAL_RUN_STATUSES, CompletionSignal, NodeError, Token
from common.runs.scripts import Scripts, now_ms
from common.settings import WorkerSettings
from common.streams import ensure_group
from workers._handler import NodeContext, NodeHandler, NodeResult
from workers._prepare import Preparer, node_failed_error
from workers._reclaim import Reclaimer

logger = logging.getLogger(__name__)


class RunEnded(Exception):
    """The run ended (cancelled, failed, timed out) while a handler was working."""


class Worker:
    """Consumes ``wf.tasks.<type>`` for its handlers' types with bounded concurrency."""

    def __init__(
        self,
        settings: WorkerSettings,
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
        self._preparer = Preparer(redis, self._keys, self._cas, self._irs, self.id)
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
            await ensure_group(self._redis, stream, self.group(stream))

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
            taken = await self._take_slots()
            try:
                reply = await self._redis.xreadgroup(
                    group, self.id, {stream: ">"}, count=taken, block=self.settings.worker_block_ms
                )
            except BaseException:
                self._release(taken)
                raise
            entries = reply[0][1] if reply else []
            self._release(taken - len(entries))
            if entries:
                self.spawn(stream, entries)

    async def _take_slots(self) -> int:
        """Wait for one free slot, then take as many more as are free, up to this stream's share."""
        await self._slots.acquire()
        taken = 1
        while taken < self._batch_cap and not self._slots.locked():
            await self._slots.acquire()
            taken += 1
        return taken

    def _release(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    def spawn(self, stream: str, entries: list[tuple[str, dict[str, str] | None]]) -> None:
        """Handle ``entries`` in a task; the caller holds one slot per entry, which the task releases."""
        task = asyncio.create_task(self._handle_batch(stream, entries))
        self._active.add(task)
        task.add_done_callback(self._active.discard)

    async def acquire_slot(self) -> None:
        """Wait for a free handler slot (released by the task ``spawn`` starts)."""
        await self._slots.acquire()

    async def _handle_batch(self, stream: str, entries: list[tuple[str, dict[str, str] | None]]) -> None:
        handler = self._handlers[stream]
        held = len(entries)
        try:
            prepared = await self._preparer.prepare(entries)
            signals: list[tuple[str, CompletionSignal]] = []
            acks: list[str] = []
            long_running = []
            for p in prepared:
                if p.malformed:
                    logger.error("malformed token %s on %s moved to the dead-letter stream", p.entry_id, stream)
                    await self.dead_letter(stream, p.entry_id, p.fields or {}, None, "malformed token")
                elif p.signal is not None:
                    signals.append((p.entry_id, p.signal))
                elif p.ctx is None:
                    acks.append(p.entry_id)
                    self._done.labels(handler.node_type, "dropped").inc()
                elif handler.reports_start or p.ctx.node.timeout_s is not None:
                    long_running.append((p.entry_id, p.ctx))
                else:
                    # Instant built-ins run inline, and their completions leave in one transaction.
                    signal = await self._execute(handler, p.ctx, stream, p.entry_id)
                    if signal is None:
                        acks.append(p.entry_id)
                    else:
                        signals.append((p.entry_id, signal))
            for entry_id, ctx in long_running:
                task = asyncio.create_task(self._handle_long(handler, ctx, stream, entry_id))
                self._active.add(task)
                task.add_done_callback(self._active.discard)
                held -= 1
            await asyncio.shield(self._complete(stream, signals, acks))
        except Exception:
            # Unacked entries stay pending: after the visibility timeout a worker (maybe this one) retries them.
            logger.exception("a batch of %d tokens on %s failed in the runtime", len(entries), stream)
        finally:
            self._release(held)

    async def _handle_long(self, handler: NodeHandler, ctx: NodeContext, stream: str, entry_id: str) -> None:
        try:
            with log_context(run_id=ctx.run_id, node_id=ctx.node_id):
                if handler.reports_start:
                    await self._scripts.run_script("mark_started", ctx.run_id, ctx.node_id, ctx.token.attempt, self.id)
                signal = await self._execute(handler, ctx, stream, entry_id)
                if signal is None:
                    await asyncio.shield(self._complete(stream, [], [entry_id]))
                else:
                    await asyncio.shield(self._complete(stream, [(entry_id, signal)], []))
        except Exception:
            logger.exception("token %s on %s failed in the runtime", entry_id, stream)
        finally:
            self._slots.release()

    async def _execute(
        self, handler: NodeHandler, ctx: NodeContext, stream: str, entry_id: str
    ) -> CompletionSignal | None:
        """Run the handler; returns the completion to send, or ``None`` when only an ack is due."""
        token = ctx.token
        started_at = now_ms()
        try:
            result = await self._run_handler(handler, ctx, stream, entry_id)
        except RunEnded:
            self._done.labels(handler.node_type, "cancelled").inc()
            return None
        except NodeFailed as exc:
            signal = CompletionSignal.failed(
                token, node_failed_error(exc), worker_id=self.id, started_at_ms=started_at, ended_at_ms=now_ms()
            )
        except Exception as exc:
            logger.exception("handler for %s crashed", token.node_id)
            error = NodeError(type="crash", message=f"{type(exc).__name__}: {exc}")
            signal = CompletionSignal.failed(
                token, error, worker_id=self.id, started_at_ms=started_at, ended_at_ms=now_ms()
            )
        else:
            if not result.complete:
                self._done.labels(handler.node_type, "deferred").inc()
                return None
            output_ref = await self._cas.store_output(result.output, self.settings.inline_output_max_bytes)
            signal = CompletionSignal.succeeded(
                token,
                output_ref,
                branch=result.branch,
                worker_id=self.id,
                started_at_ms=started_at,
                ended_at_ms=now_ms(),
            )
        self._exec.labels(handler.node_type).observe(((signal.ended_at_ms or started_at) - started_at) / 1000)
        self._done.labels(handler.node_type, signal.status).inc()
        return signal

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

    async def _complete(self, stream: str, signals: list[tuple[str, CompletionSignal]], acks: list[str]) -> None:
        """Push completions and acknowledge their entries (and ``acks``) in one transaction."""
        ids = [entry_id for entry_id, _ in signals] + acks
        if not ids:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            if signals:
                pipe.rpush(self._keys.completion_signals, *(s.model_dump_json(exclude_none=True) for _, s in signals))
            pipe.xack(stream, self.group(stream), *ids)
            pipe.xdel(stream, *ids)
            await pipe.execute()

    async def dead_letter(
        self, stream: str, entry_id: str, fields: dict[str, str], token: Token | None, reason: str
    ) -> None:
        """Move an entry to ``wf.dlq``; its node fails (no retry) when the token is readable."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self._keys.dlq, {"stream": stream, "entry_id": entry_id, "reason": reason, **fields})
            if token is not None:
                error = NodeError(type="delivery_limit", message=reason, retryable=False)
                signal = CompletionSignal.failed(token, error, worker_id=self.id, ended_at_ms=now_ms())
                pipe.rpush(self._keys.completion_signals, signal.model_dump_json(exclude_none=True))
            pipe.xack(stream, self.group(stream), entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
