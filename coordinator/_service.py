"""The coordinator service: takes completion signals of the shards it leases, decides, applies; runs heartbeats and
timers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from contextlib import AsyncExitStack
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import RedisError

from common.clients import open_clients
from common.gc_tuning import settle_heap
from common.keys import Keys
from common.lifecycle import serve_until_signalled
from common.logging import configure_logging
from common.metrics import Metrics
from common.ops_endpoint import ops_endpoint
from common.retry import Retry, sleep_unless
from common.runs.admission import release_ended
from common.runs.cas import Cas
from common.runs.dead_letters import DeadLetter
from common.runs.decisions import Decision
from common.runs.ir_cache import CachedIr, IrCache
from common.runs.messages import CompletionSignal, unsupported_version
from common.runs.retention import HotRetention
from common.runs.scripts import Scripts, now_ms
from common.settings import CoordinatorSettings
from common.tracing import Tracing, start_tracing
from common.workflow.edges import needs_output
from common.workflow.templates import TemplateScope
from coordinator._decide import decide
from coordinator._leases import ShardLeases
from coordinator._notifications import Notifier
from coordinator._outputs import compute_outputs
from coordinator._reconciler import Reconciler
from coordinator._recorder import Recorder
from coordinator._schedules import Scheduler
from coordinator._signals import SignalInbox, requeue_orphaned_signals
from coordinator._timers import move_due_tokens, time_out_runs
from coordinator._tracing import record_applied

logger = logging.getLogger(__name__)

MAX_STALE_RETRIES = 5


class Coordinator:
    """Stateless: every decision is applied atomically in Redis, so any number may run and any may die."""

    def __init__(
        self,
        settings: CoordinatorSettings,
        redis: aioredis.Redis,
        *,
        cas: Cas | None = None,
        metrics: Metrics | None = None,
        coordinator_id: str | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self._tracing = tracing
        self.id = coordinator_id or uuid.uuid4().hex[:12]
        self._redis = redis
        self._keys = Keys(settings.key_prefix, settings.shards)
        self._scripts = Scripts(redis, self._keys)
        self._cas = cas or Cas(redis, self._keys)
        self._irs = IrCache(redis, self._keys)
        self._leases = ShardLeases(redis, self._keys, self.id, self._heartbeat_ttl_ms)
        self._shard_loops: dict[int, asyncio.Task[None]] = {}
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        metrics = metrics or Metrics()
        self._retry = Retry("coordinator", metrics=metrics)
        self._applied = metrics.counter("aob_coordinator_signals_total", "completion signals handled", ["result"])
        self._batch_seconds = metrics.histogram("aob_coordinator_batch_seconds", "time to apply one batch", [])

    async def __aenter__(self) -> Coordinator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    @property
    def _heartbeat_ttl_ms(self) -> int:
        return int(self.settings.coordinator_heartbeat_s * 3000)

    @property
    def shards(self) -> set[int]:
        """The shards this coordinator leases now."""
        return set(self._leases.owned)

    async def run(self) -> None:
        """Serve until ``shutdown``: signals of the leased shards, heartbeat with leases and orphan recovery, timers."""
        await self._retry.until_done("heartbeat", self._heartbeat_step, self._stopping)
        logger.info("coordinator %s started with shards %s", self.id, sorted(self._leases.owned))
        self._tasks = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._timer_loop(), name="timers"),
        ]
        try:
            await asyncio.gather(*self._tasks)
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._stop_shard_loops(set(self._shard_loops))

    async def shutdown(self) -> None:
        """Stop taking signals; the batch in hand is finished, then the loops end. Idempotent."""
        if self._stopping.is_set():
            return
        logger.info("coordinator %s stopping", self.id)
        self._stopping.set()

    async def _signal_loop(self, shard: int) -> None:
        inbox = SignalInbox(self._redis, self._scripts, self._keys, self.id, shard)
        await self._retry.until_done("signals", inbox.join, self._stopping)
        # Until a batch is settled its signals stay in our inflight list (also left by an earlier life of this
        # coordinator id): they are finished before any new one is taken.
        unsettled = [True]

        async def step() -> None:
            batch = await inbox.pending() if unsettled[0] else []
            if not batch:
                unsettled[0] = False
                batch = await inbox.take(self.settings.coordinator_block_s, self.settings.coordinator_drain_batch)
            if not batch:
                return
            unsettled[0] = True
            # The batch is finished even if shutdown starts (or the lease goes) meanwhile.
            await asyncio.shield(self._process_and_release(inbox, batch))
            unsettled[0] = False

        # A Redis error (or a bug) in one step is logged, counted and retried: it never ends the coordinator.
        while shard in self._leases.owned and await self._retry.until_done("signals", step, self._stopping):
            pass

    async def _process_and_release(self, inbox: SignalInbox, batch: list[str]) -> None:
        started = time.perf_counter()
        await self._process(batch)
        await inbox.done()
        self._batch_seconds.observe(time.perf_counter() - started)

    def _follow_leases(self) -> None:
        """Start a signal loop for each shard newly leased; a loop of a shard given back or lost ends by itself
        after its batch in hand."""
        for shard, loop in list(self._shard_loops.items()):
            if loop.done():
                del self._shard_loops[shard]
        for shard in sorted(self._leases.owned - set(self._shard_loops)):
            self._shard_loops[shard] = asyncio.create_task(self._signal_loop(shard), name=f"signals:{shard}")

    async def _stop_shard_loops(self, shards: set[int]) -> None:
        # A loop ends by itself once its shard is not owned (after its batch in hand, within the block time).
        loops = [self._shard_loops.pop(shard) for shard in shards]
        if loops:
            await asyncio.wait(loops, timeout=self.settings.coordinator_block_s + 1)
        for loop in loops:
            loop.cancel()
        await asyncio.gather(*loops, return_exceptions=True)

    async def process_batch(self, raw_signals: list[str]) -> None:
        """Decide and apply a batch of raw signals (public for tests and burst mode)."""
        await self._process(raw_signals)

    async def _process(self, raw_signals: list[str]) -> None:
        started_ms = now_ms()
        signals: list[CompletionSignal] = []
        for raw in raw_signals:
            try:
                signals.append(CompletionSignal.model_validate_json(raw))
            except ValidationError as exc:
                refusal = unsupported_version(exc)
                if refusal is not None:
                    # Not acted on: a coordinator that knows the version may replay it from the dead-letter stream.
                    logger.error("completion signal refused and dead-lettered: %s: %r", refusal, raw[:200])
                    self._applied.labels("unsupported_version").inc()
                    inbox = self._keys.shard(0).completion_signals
                    await self._park(DeadLetter.of_signal(inbox, raw, str(refusal), by=self.id))
                else:
                    logger.error("dropping malformed completion signal %r: %s", raw[:200], exc)
                    self._applied.labels("malformed").inc()
        await self._irs.prefetch({signal.run_id for signal in signals})
        planned: list[tuple[CompletionSignal, CachedIr, Decision]] = []
        for signal in signals:
            plan = await self._plan(signal, reload=False)
            if plan is not None:
                planned.append((signal, *plan))
        if not planned:
            return
        results = await self._scripts.apply_completions(
            [(signal.run_id, decision, entry.topology_json) for signal, entry, decision in planned],
            self.settings.max_agents,
        )
        if self._tracing is not None:
            record_applied(self._tracing, planned, results, started_ms, now_ms())
        finished = []
        for (signal, entry, _), result in zip(planned, results, strict=True):
            if await self._settle(signal, entry, result):
                finished.append((signal.run_id, entry))
        # Outputs need each run's stored outputs: one run at a time would serialise a round trip per run.
        await asyncio.gather(*(self._store_outputs(run_id, entry) for run_id, entry in finished))

    async def _plan(self, signal: CompletionSignal, *, reload: bool) -> tuple[CachedIr, Decision] | None:
        entry = await (self._irs.reload(signal.run_id) if reload else self._irs.get(signal.run_id))
        newer = entry is not None and (signal.node_id not in entry.ir.nodes or (signal.ir_version or 0) > entry.version)
        if newer and not reload:
            # The token was queued under a newer IR than ours (a patch added or changed its node): reload it.
            entry = await self._irs.reload(signal.run_id)
        if entry is None or signal.node_id not in entry.ir.nodes:
            await self._dead_letter(signal, "no such run" if entry is None else "no such node in the run's IR")
            return None
        output: Any = None
        if signal.output_ref and needs_output(entry.ir, signal.node_id):
            output = await self._cas.load_output(signal.output_ref)
        inputs = await self._irs.inputs(signal.run_id, entry, signal.epoch)
        scope = TemplateScope(inputs=inputs, nodes={}, limits=self.settings)
        return entry, decide(entry.ir, signal, output, scope)

    async def _dead_letter(self, signal: CompletionSignal, reason: str) -> None:
        """Keep a signal that cannot be applied in ``wf.dlq`` with the reason, rather than lose it."""
        logger.error("signal %s of %s/%s dead-lettered: %s", signal.token_id, signal.run_id, signal.node_id, reason)
        self._applied.labels("dead_lettered").inc()
        raw = signal.model_dump_json(exclude_none=True)
        inbox = self._keys.shard_for(signal.run_id).completion_signals
        await self._park(DeadLetter.of_signal(inbox, raw, reason, by=self.id))

    async def _park(self, letter: DeadLetter) -> None:
        await self._redis.xadd(self._keys.dlq, letter.stored(), maxlen=self.settings.dlq_maxlen, approximate=True)

    async def _store_outputs(self, run_id: str, entry: CachedIr) -> None:
        outputs = await compute_outputs(self._redis, self._keys, self._cas, run_id, entry.ir, self.settings)
        await self._scripts.run_script("set_outputs", run_id, json.dumps(outputs))
        self._irs.forget(run_id)

    async def _settle(self, signal: CompletionSignal, entry: CachedIr, result: list[Any]) -> bool:
        """Finish applying one signal; returns whether its run succeeded and still needs its outputs stored."""
        for _ in range(MAX_STALE_RETRIES):
            outcome, status, has_outputs = result[0], result[1], int(result[2])
            if outcome != "stale":
                break
            # The IR was patched since we decided: decide again on the current one.
            plan = await self._plan(signal, reload=True)
            if plan is None:
                return False
            entry, decision = plan
            [result] = await self._scripts.apply_completions(
                [(signal.run_id, decision, entry.topology_json)], self.settings.max_agents
            )
        else:
            raise RuntimeError(f"run {signal.run_id}: IR version kept changing while applying {signal.token_id}")
        self._applied.labels(outcome).inc()
        if outcome == "invariant":
            logger.error("run %s failed with engine_invariant: nodes never ended (see its error)", signal.run_id)
        if outcome == "finished" and has_outputs:
            self._irs.forget(signal.run_id)
        return status == "succeeded" and not has_outputs and outcome in ("finished", "duplicate")

    async def _live_coordinators(self) -> int:
        """Heartbeat, and count the coordinators alive (forgetting those whose heartbeat expired)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.coordinator_alive(self.id), now_ms(), px=self._heartbeat_ttl_ms)
            pipe.sadd(self._keys.coordinators, self.id)
            pipe.smembers(self._keys.coordinators)
            *_, members = await pipe.execute()
        others = sorted(set(members) - {self.id})
        async with self._redis.pipeline(transaction=False) as pipe:
            for coordinator_id in others:
                pipe.exists(self._keys.coordinator_alive(coordinator_id))
            alive = await pipe.execute() if others else []
        dead = [coordinator_id for coordinator_id, up in zip(others, alive, strict=True) if not up]
        if dead:
            await self._redis.srem(self._keys.coordinators, *dead)
        return 1 + len(others) - len(dead)

    async def _heartbeat_loop(self) -> None:
        while await self._retry.until_done("heartbeat", self._heartbeat_step, self._stopping):
            await sleep_unless(self._stopping, self.settings.coordinator_heartbeat_s)
        # Peers take the shards at their next heartbeat instead of after the leases expire.
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(self._keys.coordinator_alive(self.id))
            await self._redis.srem(self._keys.coordinators, self.id)
            held = set(self._leases.owned)
            self._leases.owned.clear()
            await self._stop_shard_loops(set(self._shard_loops))
            await self._leases.release(held)

    async def _heartbeat_step(self) -> None:
        await self._leases.refresh(await self._live_coordinators())
        self._follow_leases()
        await requeue_orphaned_signals(self._redis, self._keys, sorted(self._leases.owned), self.id)

    async def _timer_loop(self) -> None:
        while await self._retry.until_done("timers", self._timer_step, self._stopping):
            await sleep_unless(self._stopping, self.settings.timer_interval_s)

    async def _timer_step(self) -> None:
        shards = sorted(self._leases.owned)
        await move_due_tokens(self._scripts, shards)
        await time_out_runs(self._redis, self._scripts, self._keys, shards)
        await release_ended(self._redis, self._keys, shards)


async def run_coordinator(settings: CoordinatorSettings) -> None:
    """``aob coordinator``: coordinate, record to Postgres, archive ended runs' events, reconcile Redis with
    Postgres and fire due schedules until SIGTERM."""
    from common.events.archive import EventArchiver

    configure_logging(settings.log_level, settings.log_json)
    keys = Keys(settings.key_prefix, settings.shards)
    async with AsyncExitStack() as stack:
        redis, pool = await open_clients(stack, settings, "coordinator")
        metrics = Metrics()
        tracing = start_tracing("aob-coordinator", settings)
        if tracing is not None:
            stack.callback(tracing.shutdown)
        cas = Cas(redis, keys, pool)
        coordinator = Coordinator(settings, redis, cas=cas, metrics=metrics, tracing=tracing)
        recorder = Recorder(
            redis,
            pool,
            keys,
            f"rec-{coordinator.id}",
            settings.recorder_batch,
            settings.recorder_reclaim_idle_s,
            retention=HotRetention(redis, keys, settings.hot_retention_s),
            metrics=metrics,
        )
        archiver = EventArchiver(redis, pool, keys, consumer=f"arc-{coordinator.id}", metrics=metrics)
        reconciler = Reconciler(settings, redis, pool, cas=cas, metrics=metrics)
        scheduler = Scheduler(settings, redis, pool, metrics=metrics, tracing=tracing)
        notifier = Notifier(settings, redis, pool, keys, consumer=f"ntf-{coordinator.id}", metrics=metrics)
        settle_heap()
        async with ops_endpoint(settings, redis, pool, metrics, f"coordinator {coordinator.id}"):
            await serve_until_signalled(coordinator, recorder, archiver, reconciler, scheduler, notifier)
