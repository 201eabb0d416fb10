"""The worker runtime every node type shares: consume tokens, run handlers, report completions."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis
from pydantic import ValidationError

from common.errors import NodeFailed
from common.keys import Keys
from common.logging import log_context
from common.metrics import Metrics
from common.retry import Retry
from common.runs.cas import Cas
from common.runs.dead_letters import DeadLetter
from common.runs.ir_cache import IrCache
from common.runs.messages import TERMINAL_RUN_STATUSES, CompletionSignal, NodeError, Token
from common.runs.scripts import Scripts, now_ms
from common.settings import WorkerSettings
from common.streams import Batch, Slots, StreamConsumer, Undeliverable
from common.tracing import SpanHandle, Tracing
from workers._attempt_span import attempt_attributes, describe_outcome
from workers._handler import NodeContext, NodeHandler, NodeResult
from workers._prepare import Preparer, node_failed_error

logger = logging.getLogger(__name__)


class RunEnded(Exception):
    """The run ended (cancelled, failed, timed out) while a handler was working."""


class Worker:
    """Consumes every shard's ``wf.tasks.<type>`` for its handlers' types with bounded concurrency."""

    def __init__(
        self,
        settings: WorkerSettings,
        redis: aioredis.Redis,
        handlers: Sequence[NodeHandler],
        *,
        cas: Cas | None = None,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self._tracing = tracing
        self.id = worker_id or f"w-{uuid.uuid4().hex[:12]}"
        self._redis = redis
        self._keys = Keys(settings.key_prefix, settings.shards)
        self._scripts = Scripts(redis, self._keys)
        self._cas = cas or Cas(redis, self._keys)
        self._irs = IrCache(redis, self._keys)
        self._handlers = {stream: h for h in handlers for stream in self._keys.tasks(h.node_type)}
        self._preparer = Preparer(self._scripts, self._cas, self._irs, self.id, template_limits=settings)
        metrics = metrics or Metrics()
        self._done = metrics.counter("aob_worker_tokens_total", "tokens handled", ["type", "outcome"])
        self._exec = metrics.histogram("aob_worker_exec_seconds", "handler time", ["type"])
        slots = Slots(settings.worker_concurrency)
        # Each stream's reader takes at most its share of the slots, so one idle stream cannot starve another.
        batch_cap = max(1, settings.worker_concurrency // max(1, len(handlers)))
        consumers = {
            handler.node_type: StreamConsumer(
                redis,
                name=f"worker.{handler.node_type}",
                group=self._keys.workers_group(handler.node_type),
                consumer=self.id,
                streams=self._keys.tasks(handler.node_type),
                handler=self._handle_batch,
                batch=batch_cap,
                concurrency=slots,
                block_ms=settings.worker_block_ms,
                claim_idle_s=settings.visibility_timeout_s,
                max_deliveries=settings.max_deliveries,
                dead_letter=self._bury,
                delete_acked=True,
                grace_s=settings.shutdown_grace_s,
                metrics=metrics,
            )
            for handler in handlers
        }
        self._consumers = {stream: consumers[handler.node_type] for stream, handler in self._handlers.items()}
        self._type_consumers = list(consumers.values())

    async def __aenter__(self) -> Worker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def ensure_groups(self) -> None:
        """Create each stream's consumer group (and the stream) if missing."""
        for consumer in self._type_consumers:
            await consumer.ensure_groups()

    async def run(self) -> None:
        """Serve until ``shutdown``; in-flight tokens then get the grace period, the rest are left to be reclaimed."""
        logger.info("worker %s consuming %s", self.id, ", ".join(c.name for c in self._type_consumers))
        await asyncio.gather(*(consumer.run() for consumer in self._type_consumers))

    async def shutdown(self) -> None:
        """Stop taking tokens; in-flight ones get the grace period. Idempotent."""
        for consumer in self._type_consumers:
            await consumer.shutdown()

    async def _handle_batch(self, batch: Batch) -> None:
        stream = batch.stream
        handler = self._handlers[stream]
        retry = self._consumers[stream].retry
        prepared = await self._preparer.prepare(batch.entries)
        signals: list[tuple[str, CompletionSignal]] = []
        acks: list[str] = []
        long_running = []
        for p in prepared:
            if p.malformed:
                logger.error("malformed token %s on %s moved to the dead-letter stream", p.entry_id, stream)
                bury = functools.partial(self.dead_letter, stream, p.entry_id, p.fields or {}, None, "malformed token")
                await retry.call("dead_letter", bury)
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
        await self._complete(stream, signals, acks)
        waiting = {entry_id for entry_id, _ in long_running}
        batch.release(entry_id for entry_id, _ in batch.entries if entry_id not in waiting)
        # Each long-running token frees its slot when it is done; cancelling the batch cancels them all.
        await asyncio.gather(*(self._handle_long(handler, ctx, batch, entry_id) for entry_id, ctx in long_running))

    async def _handle_long(self, handler: NodeHandler, ctx: NodeContext, batch: Batch, entry_id: str) -> None:
        stream = batch.stream
        retry = self._consumers[stream].retry
        try:
            with log_context(run_id=ctx.run_id, node_id=ctx.node_id):
                if handler.reports_start:
                    mark = functools.partial(
                        self._scripts.run_script, "mark_started", ctx.run_id, ctx.node_id, ctx.token.attempt, self.id
                    )
                    await retry.call("mark_started", mark)
                signal = await self._execute(handler, ctx, stream, entry_id)
                if signal is None:
                    await self._complete(stream, [], [entry_id])
                else:
                    await self._complete(stream, [(entry_id, signal)], [])
        except Exception:
            # Left pending: after the visibility timeout a worker (maybe this one) retries it.
            retry.count("handle")
            logger.exception("token %s on %s failed in the runtime", entry_id, stream)
        finally:
            batch.release([entry_id])

    async def _execute(
        self, handler: NodeHandler, ctx: NodeContext, stream: str, entry_id: str
    ) -> CompletionSignal | None:
        """Run the handler (in a span of the run's trace when tracing is on and the run has one); returns the
        completion to send, or ``None`` when only an ack is due."""
        parent = ctx.token.traceparent
        if self._tracing is None or parent is None:
            return await self._attempt(handler, ctx, stream, None)
        started_at = now_ms()
        attributes = attempt_attributes(ctx, entry_id, self.id, started_at)
        with self._tracing.span(f"aob.node {ctx.node.type}", parent=parent, attributes=attributes) as span:
            ctx.traceparent = span.traceparent
            signal = await self._attempt(handler, ctx, stream, span)
            describe_outcome(span, signal, started_at, now_ms())
        return signal

    async def _attempt(
        self, handler: NodeHandler, ctx: NodeContext, stream: str, span: SpanHandle | None
    ) -> CompletionSignal | None:
        token = ctx.token
        started_at = now_ms()
        try:
            result = await self._run_handler(handler, ctx, stream)
        except RunEnded:
            self._done.labels(handler.node_type, "cancelled").inc()
            return None
        except NodeFailed as exc:
            if span is not None:
                span.fail(exc.error_type, exc)
            signal = CompletionSignal.failed(
                token, node_failed_error(exc), worker_id=self.id, started_at_ms=started_at, ended_at_ms=now_ms()
            )
        except Exception as exc:
            logger.exception("handler for %s crashed", token.node_id)
            if span is not None:
                span.fail("crash", exc)
            error = NodeError(type="crash", message=f"{type(exc).__name__}: {exc}")
            signal = CompletionSignal.failed(
                token, error, worker_id=self.id, started_at_ms=started_at, ended_at_ms=now_ms()
            )
        else:
            if not result.complete:
                self._done.labels(handler.node_type, "deferred").inc()
                return None
            store = functools.partial(self._cas.store_output, result.output, self.settings.inline_output_max_bytes)
            output_ref = await self._consumers[stream].retry.call("store_output", store)
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

    async def _run_handler(self, handler: NodeHandler, ctx: NodeContext, stream: str) -> NodeResult:
        timeout_s = ctx.node.timeout_s
        if not handler.reports_start and timeout_s is None:
            # Instant built-ins: no watcher.
            return await handler(ctx)
        work = asyncio.create_task(handler(ctx))
        watcher = asyncio.create_task(self._watch(ctx, work, self._consumers[stream].retry))
        try:
            if not timeout_s:
                return await work
            async with asyncio.timeout(timeout_s):
                return await asyncio.shield(work)
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

    async def _watch(self, ctx: NodeContext, work: asyncio.Task[NodeResult], retry: Retry) -> None:
        """Tell the handler when its run ends (the consumer keeps the claim on its entry alive meanwhile)."""
        read_run = functools.partial(self._redis.hmget, self._keys.run(ctx.run_id), ["status", "epoch"])
        while not work.done():
            await asyncio.sleep(self.settings.cancel_poll_s)
            status, epoch = await retry.call("watch", read_run)
            # A resume since this token was queued makes it stale: the new epoch runs the node again.
            if status is None or status in TERMINAL_RUN_STATUSES or (epoch or "0") != ctx.token.epoch:
                ctx.cancelled.set()
                work.cancel()
                return

    async def _complete(self, stream: str, signals: list[tuple[str, CompletionSignal]], acks: list[str]) -> None:
        """Push completions and acknowledge their entries (and ``acks``) in one transaction, tried again on
        transient errors; a try once begun runs whole even if the caller is cancelled."""
        ids = [entry_id for entry_id, _ in signals] + acks
        if ids:
            commit = functools.partial(self._commit, stream, [signal for _, signal in signals], ids)
            await self._consumers[stream].retry.call("complete", lambda: asyncio.shield(commit()))

    async def _commit(self, stream: str, signals: list[CompletionSignal], ids: list[str]) -> None:
        # A stream holds tokens of its shard's runs only: their signals go to the same shard, in the same slot.
        async with self._redis.pipeline(transaction=True) as pipe:
            if signals:
                inbox = self._keys.shard_for(signals[0].run_id).completion_signals
                pipe.rpush(inbox, *(s.model_dump_json(exclude_none=True) for s in signals))
            self._consumers[stream].queue_ack(pipe, stream, ids)
            await pipe.execute()

    async def _bury(self, letter: Undeliverable) -> None:
        try:
            token: Token | None = Token.model_validate_json(letter.fields.get("t", ""))
        except ValidationError:
            token = None
        await self.dead_letter(letter.stream, letter.entry_id, letter.fields, token, letter.reason)

    async def dead_letter(
        self, stream: str, entry_id: str, fields: dict[str, str], token: Token | None, reason: str
    ) -> None:
        """Move an entry to ``wf.dlq``; its node fails (no retry) when the token is readable."""
        letter = DeadLetter.of_token(stream, entry_id, fields, reason, by=self.id)
        # The dead-letter stream is in another slot than the task stream: it is written first, so a crash in between
        # leaves the entry pending (buried again later, a duplicate letter at worst), never lost.
        await self._redis.xadd(self._keys.dlq, letter.stored(), maxlen=self.settings.dlq_maxlen, approximate=True)
        async with self._redis.pipeline(transaction=True) as pipe:
            if token is not None:
                error = NodeError(type="delivery_limit", message=reason, retryable=False)
                signal = CompletionSignal.failed(token, error, worker_id=self.id, ended_at_ms=now_ms())
                inbox = self._keys.shard_for(token.run_id).completion_signals
                pipe.rpush(inbox, signal.model_dump_json(exclude_none=True))
            self._consumers[stream].queue_ack(pipe, stream, [entry_id])
            await pipe.execute()
