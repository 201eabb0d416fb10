"""The one consumer-group loop every stream consumer of aob runs on.

It creates the group, reads this consumer's own pending entries and then new ones, claims entries left idle by a
dead peer (dead-lettering those delivered too often), keeps the claims of entries in hand alive, and shuts down in
order: stop reading, let in-flight batches finish for a grace period, cancel the rest, whose entries stay pending
for a peer to claim. Every Redis, Postgres or OS error is logged, counted in ``aob_consumer_errors_total`` and
retried with backoff; none ends the loop.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.redis_client import slot_groups
from common.retry import Backoff, Retry, sleep_unless
from common.streams.batch import Batch, Entry, Slots, Undeliverable
from common.streams.groups import ensure_group

logger = logging.getLogger(__name__)

BatchHandler = Callable[[Batch], Awaitable[None]]
DeadLetter = Callable[[Undeliverable], Awaitable[None]]
StreamSource = Callable[[], Awaitable[Sequence[str]]]
_NEW = ">"
# How long a consumer on a cluster waits after a round of reads that found nothing (it cannot block on every slot).
CLUSTER_POLL_S = 0.02


class StreamConsumer:
    """Consumes ``streams`` in consumer group ``group`` as ``consumer``, handing batches of entries to ``handler``.

    The handler acknowledges what it handled (``ack``, or ``queue_ack`` inside its own transaction); an entry it
    leaves unacknowledged is claimed again after ``claim_idle_s``. A transient error raised by the handler makes
    the batch be tried again in place; any other leaves its entries pending. An entry claimed after more than
    ``max_deliveries`` deliveries goes to ``dead_letter`` instead, then is acknowledged. ``streams`` may be a coroutine
    function, asked again every ``refresh_s``. ``concurrency`` bounds the entries in hand (``Slots`` share the
    bound between consumers); by default one batch is handled at a time.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        name: str,
        group: str,
        consumer: str,
        streams: Sequence[str] | StreamSource,
        handler: BatchHandler,
        batch: int = 100,
        concurrency: int | Slots | None = None,
        block_ms: int = 1000,
        claim_idle_s: float = 30.0,
        claim_every_s: float | None = None,
        max_deliveries: int | None = None,
        dead_letter: DeadLetter | None = None,
        delete_acked: bool = False,
        refresh_s: float = 30.0,
        grace_s: float = 10.0,
        metrics: Metrics | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        if (max_deliveries is None) != (dead_letter is None):
            raise TypeError(f"{name}: max_deliveries and dead_letter go together")
        self.name = name
        self.group = group
        self.consumer = consumer
        self._redis = redis
        self._source: StreamSource | None = None
        self._streams: list[str] = []
        if callable(streams):
            self._source = streams
        else:
            self._streams = list(streams)
        self._handler = handler
        self._batch = batch
        self._slots = concurrency if isinstance(concurrency, Slots) else Slots(concurrency or batch)
        # One batch at a time unless told otherwise: a reader then waits until every slot is free.
        self._at_least = self._slots.total if concurrency is None else 1
        self._block_ms = block_ms
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._max_deliveries = max_deliveries
        self._dead_letter = dead_letter
        self._delete_acked = delete_acked
        self._grace_s = grace_s
        self._retry = Retry(name, metrics=metrics, backoff=backoff)
        self._stopping = asyncio.Event()
        self._grouped: set[str] = set()
        self._cursors: dict[str, str] = {}
        self._inflight: dict[str, set[str]] = {}
        self._active: set[asyncio.Task[None]] = set()
        claim_every_s = claim_every_s or claim_idle_s / 2
        self._claims = PeriodicTask(self._claim_all, claim_every_s, retry=self._retry, stage="claim")
        # Claims of entries in hand are renewed well within the idle time after which a peer would take them.
        self._heartbeat = PeriodicTask(self._keep_claims, claim_idle_s / 3, retry=self._retry, stage="heartbeat")
        self._refresher = PeriodicTask(self.ensure_groups, refresh_s, retry=self._retry, stage="streams")

    @property
    def streams(self) -> list[str]:
        return list(self._streams)

    @property
    def retry(self) -> Retry:
        """The consumer's error policy, for a handler retrying its own steps (logged and counted the same way)."""
        return self._retry

    async def __aenter__(self) -> StreamConsumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def ensure_groups(self) -> None:
        """Ask the stream source again (if any), and create the group on every stream that lacks it."""
        if self._source is not None:
            self._streams = list(await self._source())
        await self._create_missing_groups()

    async def run(self) -> None:
        """Consume until ``shutdown()``, then stop in order; returns once every batch finished or was cancelled."""
        logger.info("%s: consumer %s of group %s starting", self.name, self.consumer, self.group)
        if not await self._retry.until_done("group", self.ensure_groups, self._stopping):
            return
        readers = [asyncio.create_task(self._read_loop(), name=f"{self.name}:read")]
        readers.append(asyncio.create_task(self._claims.run(), name=f"{self.name}:claim"))
        if self._source is not None:
            readers.append(asyncio.create_task(self._refresher.run(), name=f"{self.name}:streams"))
        heartbeat = asyncio.create_task(self._heartbeat.run(), name=f"{self.name}:heartbeat")
        try:
            await self._stopping.wait()
        finally:
            await self.shutdown()
            await self._stop_reading(readers)
            await self._drain()
            await self._heartbeat.shutdown()
            await heartbeat
            logger.info("%s: consumer %s stopped", self.name, self.consumer)

    async def shutdown(self) -> None:
        """Stop taking entries; ``run`` then drains what is in hand. Idempotent."""
        if self._stopping.is_set():
            return
        logger.info("%s: consumer %s stopping: %d batches in hand", self.name, self.consumer, len(self._active))
        self._stopping.set()
        self._slots.wake()
        await self._claims.shutdown()
        await self._refresher.shutdown()

    async def claim(self) -> int:
        """Claim the entries idle past ``claim_idle_s`` on every stream and wait until they are handled; returns how
        many reached the handler (dead-lettered and deleted entries do not count)."""
        tasks: list[asyncio.Task[None]] = []
        handed = 0
        for stream in self.streams:
            handed += await self._claim_stream(stream, tasks)
        if tasks:
            await asyncio.wait(tasks)
        return handed

    async def ack(self, stream: str, entry_ids: Sequence[str]) -> None:
        """Acknowledge ``entry_ids`` (and delete them, for a consumer made with ``delete_acked``), whole even if
        the caller is cancelled meanwhile."""
        await asyncio.shield(self._ack(stream, entry_ids))

    def queue_ack(self, pipe: Any, stream: str, entry_ids: Sequence[str]) -> None:
        """Add the acknowledgement of ``entry_ids`` to ``pipe``, for a handler acknowledging in its own transaction."""
        pipe.xack(stream, self.group, *entry_ids)
        if self._delete_acked:
            pipe.xdel(stream, *entry_ids)

    async def _ack(self, stream: str, entry_ids: Sequence[str]) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            self.queue_ack(pipe, stream, entry_ids)
            await pipe.execute()

    async def _create_missing_groups(self) -> None:
        for stream in self._streams:
            if stream not in self._grouped:
                await ensure_group(self._redis, stream, self.group)
                self._grouped.add(stream)

    async def _read_loop(self) -> None:
        while await self._retry.until_done("read", self._read_once, self._stopping):
            pass

    async def _read_once(self) -> None:
        try:
            await self._create_missing_groups()
            streams = self.streams
            if not streams:
                await sleep_unless(self._stopping, self._block_ms / 1000)
                return
            taken = await self._slots.take(self._batch, at_least=self._at_least, stopped=self._stopping.is_set)
            if not taken:
                return
            try:
                # Own pending entries first (left by a previous life of this consumer), then new ones.
                cursors = {stream: self._cursors.get(stream, "0") for stream in streams}
                reply = await self._read(cursors, taken)
            except BaseException:
                self._slots.release(taken)
                raise
        except Exception as exc:
            self._forget_groups_if_missing(exc)
            raise
        got = sum(len(entries) for _, entries in reply or ())
        if got > taken:
            self._slots.charge(got - taken)
        else:
            self._slots.release(taken - got)
        for stream, entries in reply or ():
            if cursors[stream] != _NEW:
                self._cursors[stream] = entries[-1][0] if entries else _NEW
            self._dispatch(stream, entries)

    async def _read(self, cursors: dict[str, str], count: int) -> list[Any]:
        """One blocking ``XREADGROUP`` over every stream; on a cluster, where one command reads one slot, a
        non-blocking read per slot until ``count`` entries came, then a pause of ``CLUSTER_POLL_S`` when none did."""
        groups = slot_groups(self._redis, list(cursors))
        if len(groups) <= 1:
            reply = await self._redis.xreadgroup(self.group, self.consumer, cursors, count=count, block=self._block_ms)
            return list(reply or ())
        entries: list[Any] = []
        got = 0
        for group in groups:
            reply = await self._redis.xreadgroup(
                self.group, self.consumer, {stream: cursors[stream] for stream in group}, count=count - got
            )
            for stream, taken in reply or ():
                entries.append((stream, taken))
                got += len(taken)
            if got >= count:
                break
        if not got:
            await sleep_unless(self._stopping, min(CLUSTER_POLL_S, self._block_ms / 1000))
        return entries

    def _forget_groups_if_missing(self, exc: Exception) -> None:
        # A stream deleted (and so its group) is recreated with its group on the next try.
        if "NOGROUP" in str(exc):
            self._grouped.clear()

    def _dispatch(self, stream: str, entries: list[Any], tasks: list[asyncio.Task[None]] | None = None) -> int:
        """Hand ``entries`` (one slot held for each) to the handler in a task; returns how many it was given."""
        inflight = self._inflight.setdefault(stream, set())
        live: list[Entry] = [(entry_id, fields) for entry_id, fields in entries if fields and entry_id not in inflight]
        # Entries deleted while pending come back without fields (and, from Redis 6.2's XAUTOCLAIM, without id).
        deleted = [entry_id for entry_id, fields in entries if not fields and entry_id is not None]
        self._slots.release(len(entries) - len(live))
        if not live and not deleted:
            return 0
        inflight.update(entry_id for entry_id, _ in live)
        batch = Batch(stream, live, self._settle)
        task = asyncio.create_task(self._handle(batch, deleted), name=f"{self.name}:handle")
        self._active.add(task)
        task.add_done_callback(self._active.discard)
        if tasks is not None:
            tasks.append(task)
        return len(live)

    def _settle(self, stream: str, entry_ids: set[str]) -> None:
        self._inflight[stream] -= entry_ids
        self._slots.release(len(entry_ids))

    async def _handle(self, batch: Batch, deleted: list[str]) -> None:
        try:
            if deleted:
                await self._retry.call("ack", functools.partial(self.ack, batch.stream, deleted))
            if batch.entries:
                await self._retry.call("handle", functools.partial(self._handler, batch))
        except Exception:
            self._retry.count("handle")
            logger.exception(
                "%s: a batch of %d entries of %s failed; they stay pending and are claimed again after %gs",
                self.name,
                len(batch.entries),
                batch.stream,
                self._claim_idle_ms / 1000,
                extra={"consumer": self.name, "stage": "handle"},
            )
        finally:
            batch.release_all()

    async def _claim_all(self) -> None:
        for stream in self.streams:
            await self._claim_stream(stream, [])

    async def _claim_stream(self, stream: str, tasks: list[asyncio.Task[None]]) -> int:
        """Claim ``stream``'s idle entries page by page and dispatch them; returns how many were handed over."""
        start, handed = "0-0", 0
        while not self._stopping.is_set():
            # Redis 6.2 replies [next, entries]; 7.x adds the ids of entries deleted meanwhile (and drops them).
            reply: Any = await self._redis.xautoclaim(
                stream, self.group, self.consumer, self._claim_idle_ms, start_id=start, count=self._batch
            )
            start, entries = reply[0], reply[1]
            if entries:
                logger.warning("%s: claimed %d entries of %s idle for %gs", self.name, len(entries), stream,
                               self._claim_idle_ms / 1000)  # fmt: skip
            handed += await self._hand_over(stream, await self._bury_overdelivered(stream, entries), tasks)
            if start == "0-0" or not entries:
                break
        return handed

    async def _bury_overdelivered(self, stream: str, entries: list[Any]) -> list[Any]:
        """Hand entries delivered more than ``max_deliveries`` times to the dead-letter callback; returns the rest."""
        if self._dead_letter is None or self._max_deliveries is None:
            return entries
        live = [(entry_id, fields) for entry_id, fields in entries if fields]
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in live:
                pipe.xpending_range(stream, self.group, min=entry_id, max=entry_id, count=1)
            pending = await pipe.execute()
        buried = set()
        for (entry_id, fields), info in zip(live, pending, strict=True):
            deliveries = int(info[0]["times_delivered"]) if info else 1
            if deliveries > self._max_deliveries:
                letter = Undeliverable(stream, entry_id, fields, deliveries, self._max_deliveries)
                logger.error("%s: entry %s of %s dead-lettered: %s", self.name, entry_id, stream, letter.reason)
                await self._retry.call("dead_letter", functools.partial(self._dead_letter, letter))
                await self._retry.call("ack", functools.partial(self.ack, stream, [entry_id]))
                buried.add(entry_id)
        return [entry for entry in entries if entry[0] not in buried]

    async def _hand_over(self, stream: str, entries: list[Any], tasks: list[asyncio.Task[None]]) -> int:
        """Dispatch claimed ``entries`` in batches as slots free up; returns how many reached the handler."""
        handed = 0
        while entries:
            taken = await self._slots.take(self._batch, at_least=self._at_least, stopped=self._stopping.is_set)
            if not taken:
                # Shutting down: what is not dispatched stays pending, to be claimed again.
                break
            chunk, entries = entries[:taken], entries[taken:]
            self._slots.release(taken - len(chunk))
            handed += self._dispatch(stream, chunk, tasks)
        return handed

    async def _keep_claims(self) -> None:
        for stream, entry_ids in list(self._inflight.items()):
            if entry_ids:
                await self._redis.xclaim(stream, self.group, self.consumer, 0, sorted(entry_ids), justid=True)

    async def _stop_reading(self, readers: list[asyncio.Task[None]]) -> None:
        # A blocking read in progress is let end (within block_ms) so that what it took is handled, not stranded.
        _, stuck = await asyncio.wait(readers, timeout=self._block_ms / 1000 + 1)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    async def _drain(self) -> None:
        if not self._active:
            return
        in_hand = sum(len(ids) for ids in self._inflight.values())
        logger.info("%s: %d entries in hand get %gs to finish", self.name, in_hand, self._grace_s)
        _, late = await asyncio.wait(self._active, timeout=self._grace_s)
        left = sum(len(ids) for ids in self._inflight.values())
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
        if late:
            logger.warning("%s: %d entries left pending for a peer to claim", self.name, left)
