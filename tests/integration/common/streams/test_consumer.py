"""The shared stream consumer on the real Redis: read, ack, claim, dead-letter, backoff, ordered shutdown.

Claims are also checked on Redis 6.2 (the embedded server), whose XAUTOCLAIM replies differ from 7's.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from common.keys import Keys
from common.metrics import Metrics
from common.redis_client import connect_redis
from common.retry import Backoff
from common.streams import Batch, StreamConsumer, Undeliverable
from devstack.embedded import EmbeddedRedis
from tests.support.eventually import eventually
from tests.support.faults import Flaky, errors

GROUP = "g"


class Recording:
    """A handler that remembers what it saw and acknowledges it through its consumer."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.consumer: StreamConsumer | None = None

    async def __call__(self, batch: Batch) -> None:
        assert self.consumer is not None
        self.seen += [fields["n"] for _, fields in batch.entries]
        await self.consumer.ack(batch.stream, [entry_id for entry_id, _ in batch.entries])


def make(redis: Any, stream: str, handler: Callable[[Batch], Awaitable[None]], **options: Any) -> StreamConsumer:
    options = {"name": "test", "group": GROUP, "consumer": "c1", "block_ms": 50, "claim_idle_s": 30.0} | options
    consumer = StreamConsumer(redis, streams=[stream], handler=handler, **options)
    if isinstance(handler, Recording):
        handler.consumer = consumer
    return consumer


@asynccontextmanager
async def running(consumer: StreamConsumer) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(consumer.run())
    try:
        yield task
    finally:
        await consumer.shutdown()
        await asyncio.wait_for(task, 10)


@pytest.fixture(params=["7", "6.2"])
async def any_redis(request: pytest.FixtureRequest, redis: aioredis.Redis, tmp_path: Path) -> AsyncIterator[Any]:
    """The test Redis (7), or a Redis 6.2 of its own."""
    if request.param == "7":
        yield redis
        return
    server = EmbeddedRedis(tmp_path)
    await server.start()
    client = connect_redis(server.url)
    try:
        assert (await client.info("server"))["redis_version"].startswith("6.2")
        yield client
    finally:
        await client.aclose()
        await server.stop()


async def add(redis: aioredis.Redis, stream: str, *values: str) -> list[str]:
    return [await redis.xadd(stream, {"n": value}) for value in values]


async def pending(redis: aioredis.Redis, stream: str) -> int:
    return int((await redis.xpending(stream, GROUP))["pending"])


async def test_reads_and_acks_new_entries(redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    handler = Recording()
    consumer = make(redis, stream, handler, delete_acked=True)
    async with running(consumer):
        await add(redis, stream, "a", "b", "c")
        await eventually(lambda: _true(handler.seen == ["a", "b", "c"]))
        assert await pending(redis, stream) == 0
        assert await redis.xlen(stream) == 0


async def test_own_pending_entries_are_read_first(redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    handler = Recording()
    consumer = make(redis, stream, handler)
    await consumer.ensure_groups()
    await add(redis, stream, "left")
    # A previous life of consumer c1 read it and died: no claim is needed (the idle time is 30s).
    await redis.xreadgroup(GROUP, "c1", {stream: ">"})
    await add(redis, stream, "new")
    async with running(consumer):
        await eventually(lambda: _true(handler.seen == ["left", "new"]))
    assert await pending(redis, stream) == 0


async def test_claims_the_idle_entries_of_a_dead_consumer(any_redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    handler = Recording()
    consumer = make(any_redis, stream, handler, claim_idle_s=0.2)
    await consumer.ensure_groups()
    first, deleted, last = await add(any_redis, stream, "a", "deleted", "b")
    await any_redis.xreadgroup(GROUP, "dead", {stream: ">"})
    # Deleted while pending: 7.x reports its id apart, 6.2 answers nil in its place; it is never handed over.
    await any_redis.xdel(stream, deleted)
    assert await consumer.claim() == 0
    assert await eventually(consumer.claim) == 2
    assert handler.seen == ["a", "b"]
    owners = await any_redis.xpending_range(stream, GROUP, min=first, max=last, count=5)
    assert [entry["message_id"] for entry in owners if entry["consumer"] == "dead"] == []


async def test_entries_delivered_too_often_go_to_the_dead_letter_callback(
    any_redis: aioredis.Redis, keys: Keys
) -> None:
    stream = keys.shard(0).tasks("t")
    buried: list[Undeliverable] = []
    tries: list[str] = []

    async def failing(batch: Batch) -> None:
        tries.extend(entry_id for entry_id, _ in batch.entries)
        raise ValueError("poison")

    async def bury(letter: Undeliverable) -> None:
        buried.append(letter)

    metrics = Metrics()
    options = {"claim_idle_s": 0.1, "max_deliveries": 2, "dead_letter": bury, "metrics": metrics}
    consumer = make(any_redis, stream, failing, **options)
    async with running(consumer):
        [entry_id] = await add(any_redis, stream, "poison")
        await eventually(lambda: _true(len(buried) == 1))
    [letter] = buried
    assert (letter.entry_id, letter.fields, letter.deliveries) == (entry_id, {"n": "poison"}, 3)
    assert letter.reason == "delivered 3 times (limit 2)"
    assert tries == [entry_id, entry_id]
    assert errors(metrics, "test", "handle") == 2
    assert await pending(any_redis, stream) == 0


async def test_transient_errors_are_retried_with_growing_capped_backoff(redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    flaky = Flaky(redis, "xreadgroup", times=6)
    calls: list[float] = []
    handler = Recording()
    metrics = Metrics()
    backoff = Backoff(base_s=0.02, cap_s=0.08)
    consumer = make(_Timed(flaky, calls), stream, handler, metrics=metrics, backoff=backoff)
    async with running(consumer) as task:
        await add(redis, stream, "a")
        await eventually(lambda: _true(handler.seen == ["a"]))
        assert not task.done()
    assert errors(metrics, "test", "read") == 6
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls[:7])]
    # The n-th failure waits between half and all of min(cap, base * 2**(n-1)).
    floors = [min(0.08, 0.02 * 2**n) / 2 for n in range(6)]
    assert all(gap >= floor * 0.95 for gap, floor in zip(gaps, floors, strict=True)), (gaps, floors)
    # Capped: uncapped, the sixth wait would be at least 0.32s.
    assert max(gaps) < 0.25
    assert gaps[3] > gaps[0]


async def test_a_handler_s_transient_error_is_retried_in_place(
    redis: aioredis.Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    stream = keys.shard(0).tasks("t")
    recording = Recording()
    failures = [RedisConnectionError("down"), OSError("reset")]

    async def flaky(batch: Batch) -> None:
        if failures:
            raise failures.pop(0)
        await recording(batch)

    metrics = Metrics()
    consumer = make(redis, stream, flaky, metrics=metrics, backoff=Backoff(base_s=0.01, cap_s=0.02))
    recording.consumer = consumer
    async with running(consumer):
        await add(redis, stream, "a")
        await eventually(lambda: _true(recording.seen == ["a"]))
    assert errors(metrics, "test", "handle") == 2
    logged = [(r.levelname, r.consumer, r.stage) for r in caplog.records if hasattr(r, "stage")]  # type: ignore[attr-defined]
    assert logged == [("WARNING", "test", "handle")] * 2
    assert await pending(redis, stream) == 0


async def test_shutdown_cancels_what_outlives_the_grace_and_a_peer_claims_it(redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def stuck(batch: Batch) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    first = make(redis, stream, stuck, grace_s=0.2)
    task = asyncio.create_task(first.run())
    [entry_id] = await add(redis, stream, "slow")
    await asyncio.wait_for(started.wait(), 5)
    began = time.monotonic()
    await first.shutdown()
    await first.shutdown()
    await asyncio.wait_for(task, 5)
    assert cancelled.is_set() and time.monotonic() - began < 2
    [info] = await redis.xpending_range(stream, GROUP, min="-", max="+", count=10)
    assert (info["message_id"], info["consumer"]) == (entry_id, "c1")

    handler = Recording()
    peer = make(redis, stream, handler, consumer="c2", claim_idle_s=0.1)
    assert await eventually(peer.claim) == 1
    assert handler.seen == ["slow"]
    assert await pending(redis, stream) == 0


async def test_finishing_in_flight_work_within_the_grace_period(redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    started, go_on = asyncio.Event(), asyncio.Event()
    recording = Recording()

    async def slow(batch: Batch) -> None:
        started.set()
        await go_on.wait()
        await recording(batch)

    consumer = make(redis, stream, slow, grace_s=5)
    recording.consumer = consumer
    task = asyncio.create_task(consumer.run())
    await add(redis, stream, "a")
    await asyncio.wait_for(started.wait(), 5)
    await consumer.shutdown()
    await add(redis, stream, "not read")
    asyncio.get_running_loop().call_later(0.1, go_on.set)
    await asyncio.wait_for(task, 5)
    assert recording.seen == ["a"]
    assert await pending(redis, stream) == 0


async def test_concurrency_bounds_the_entries_in_hand(redis: aioredis.Redis, keys: Keys) -> None:
    stream = keys.shard(0).tasks("t")
    in_hand, most = 0, 0
    recording = Recording()

    async def counting(batch: Batch) -> None:
        nonlocal in_hand, most
        in_hand += len(batch.entries)
        most = max(most, in_hand)
        await asyncio.sleep(0.02)
        in_hand -= len(batch.entries)
        await recording(batch)

    consumer = make(redis, stream, counting, batch=2, concurrency=3)
    recording.consumer = consumer
    await consumer.ensure_groups()
    await add(redis, stream, *"abcdefgh")
    async with running(consumer):
        await eventually(lambda: _true(sorted(recording.seen) == list("abcdefgh")))
    assert most == 3


async def _true(value: bool) -> bool:
    return value


class _Timed:
    """Passes everything to ``flaky``; ``xreadgroup`` calls are timed on the way."""

    def __init__(self, flaky: Flaky, calls: list[float]) -> None:
        self._flaky = flaky
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        if name == "xreadgroup":
            self._calls.append(time.monotonic())
        return getattr(self._flaky, name)
