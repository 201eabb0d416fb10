"""The engine's real parts (worker runtime, coordinator, timers, recorder) driven one step at a time by the test.

Nothing runs in the background: a history is the sequence of steps the test takes, so a failing history replays
exactly and hypothesis can shrink it. Each step is the component's own code on the real Redis and Postgres; only
the loop that would call it (a stream consumer, the signal inbox, the timer) is the test's.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis

from common.db import create_pool
from common.keys import RECORDER_GROUP
from common.redis_client import connect_redis
from common.runs.cas import Cas
from common.streams import Batch, ensure_group
from coordinator import Coordinator
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.executions import Execution, RecordingHandler
from workers import NodeHandler, Worker
from workers.builtin import BuiltinHandler

T = TypeVar("T")
# Enough rounds for any small DAG with a few retries; more means the engine keeps producing work by itself.
MAX_SETTLE_ROUNDS = 500


class SteppedEngine(Engine):
    """An ``Engine`` whose parts never run on their own: ``work``, ``coordinate``, ``tick`` and ``record`` each
    take one step, ``settle`` takes steps until none has anything left to do."""

    def __init__(
        self,
        deployment: Deployment,
        redis: aioredis.Redis,
        *,
        handlers: Sequence[NodeHandler] = (),
        pool: asyncpg.Pool | None = None,
    ) -> None:
        super().__init__(deployment, redis, pool=pool)
        self.executions: list[Execution] = []

        async def log(execution: Execution) -> None:
            self.executions.append(execution)

        cas = Cas(redis, self.keys, pool)
        wrapped = [RecordingHandler(h, log) for h in (BuiltinHandler(), *handlers)]
        self.worker = Worker(deployment.worker(), redis, wrapped, cas=cas)
        self.coordinator = Coordinator(deployment.coordinator(), redis, cas=cas)
        self.node_types = [h.node_type for h in wrapped]
        # What was handled, for replaying it as a crash would make the engine do again.
        self.tokens: list[tuple[str, dict[str, str]]] = []
        self.signals: list[str] = []
        self.redelivered: set[str] = set()
        # Tokens that waited in the delayed set: every delay node's token must have.
        self.delayed: set[str] = set()

    async def __aenter__(self) -> SteppedEngine:
        await self.worker.ensure_groups()
        if self.recorder is not None:
            for shard in self.keys.all_shards():
                await ensure_group(self.redis, shard.ledger, RECORDER_GROUP)
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def work(self, node_type: str, max_tokens: int) -> int:
        """The worker takes up to ``max_tokens`` new tokens of ``node_type``'s streams (shard by shard, each shard's
        as one batch) and handles them to the end (handler, completion, ack); returns how many it took."""
        group = self.keys.workers_group(node_type)
        taken = 0
        for stream in self.keys.tasks(node_type):
            if taken >= max_tokens:
                break
            reply = await self.redis.xreadgroup(group, self.worker.id, {stream: ">"}, count=max_tokens - taken)
            entries = _entries(reply)
            if not entries:
                continue
            self.tokens += [(stream, fields) for _, fields in entries]
            # The consumer loop's part (slots, claims) has nothing to do when one batch at a time is handled whole.
            await self.worker._handle_batch(Batch(stream, entries, lambda _stream, _ids: None))
            pending = await self.redis.xpending(stream, group)
            if pending["pending"]:
                raise AssertionError(f"the worker left {pending['pending']} entries of {stream} unacknowledged")
            taken += len(entries)
        return taken

    async def coordinate(self, max_signals: int) -> int:
        """The coordinator takes up to ``max_signals`` completion signals (oldest first) as one batch; returns how
        many it took."""
        raw: list[str] = []
        for shard in self.keys.all_shards():
            if len(raw) < max_signals:
                raw += await self.redis.lpop(shard.completion_signals, max_signals - len(raw)) or []
        if not raw:
            return 0
        self.signals += raw
        await self.coordinator.process_batch(raw)
        return len(raw)

    async def redeliver(self, pick: int) -> bool:
        """A token handled earlier (the ``pick``-th, modulo their number) is delivered again, as when its worker died
        before acknowledging it and a peer claimed it; returns whether there was one."""
        if not self.tokens:
            return False
        stream, fields = self.tokens[pick % len(self.tokens)]
        self.redelivered.add(json.loads(fields["t"])["token_id"])
        await self.redis.xadd(stream, fields)
        return True

    async def replay_signal(self, pick: int) -> bool:
        """A signal applied earlier (the ``pick``-th, modulo their number) comes back first in line, as a dead
        coordinator's batch does when a peer requeues it; returns whether there was one."""
        if not self.signals:
            return False
        signal = self.signals[pick % len(self.signals)]
        await self.redis.lpush(self.keys.shard_for(json.loads(signal)["run_id"]).completion_signals, signal)
        return True

    async def tick(self, *, time_passes: bool = False) -> int:
        """The timer moves due delayed tokens (delay nodes, retries) to their streams; returns how many moved.
        When ``time_passes``, every delayed token is due (the clock jumps past the last)."""
        moved = 0
        for shard in self.keys.all_shards():
            waiting = await self.redis.zrange(shard.delayed, 0, -1)
            self.delayed |= {json.loads(body)["token_id"] for body in waiting}
            if time_passes and waiting:
                await self.redis.zadd(shard.delayed, dict.fromkeys(waiting, 0))
            moved += await self.scripts.move_due(shard.index, 500)
        return moved

    async def settle(self) -> int:
        """Let time pass and take steps until nothing is left to do; returns how many steps did something."""
        for busy in range(MAX_SETTLE_ROUNDS):
            moved = await self.tick(time_passes=True)
            for node_type in self.node_types:
                moved += await self.work(node_type, 100)
            moved += await self.coordinate(200)
            if not moved:
                return busy
        raise AssertionError(f"the engine still had work after {MAX_SETTLE_ROUNDS} rounds")

    async def record(self) -> int:
        """The recorder copies every ledger entry written so far to Postgres in one batch; returns how many."""
        if self.recorder is None:
            raise RuntimeError("record: this engine has no Postgres pool")
        recorded = 0
        for shard in self.keys.all_shards():
            reply = await self.redis.xreadgroup(RECORDER_GROUP, "rec-stepped", {shard.ledger: ">"}, count=100_000)
            entries: list[tuple[str, dict[str, str] | None]] = list(_entries(reply))
            # The recorder's batch step itself: which entries share a batch is part of the history the test controls.
            recorded += await self.recorder._record(shard.ledger, entries)
        return recorded


def _entries(reply: Any) -> list[tuple[str, dict[str, str]]]:
    """The entries of an XREADGROUP reply of one stream (``[[stream, entries]]``, or empty)."""
    return [(entry_id, fields) for _, entries in reply or () for entry_id, fields in entries]


@dataclass
class World:
    """What the histories of one synchronous test share (hypothesis' state machines call rules synchronously): an
    event loop of their own, its clients, and the deployment whose key prefix each history extends."""

    loop: asyncio.AbstractEventLoop
    redis: aioredis.Redis
    pool: asyncpg.Pool
    deployment: Deployment

    def do(self, step: Coroutine[Any, Any, T]) -> T:
        """Run one async step to its end."""
        return self.loop.run_until_complete(step)


@contextmanager
def open_world(deployment: Deployment) -> Iterator[World]:
    """A ``World`` on ``deployment``'s Redis and Postgres; every key under its prefix is deleted at the end."""
    loop = asyncio.new_event_loop()
    redis = connect_redis(deployment.values["redis_url"])
    try:
        pool = loop.run_until_complete(create_pool(deployment.values["database_url"], deployment.values["db_schema"]))
        try:
            yield World(loop, redis, pool, deployment)
        finally:
            loop.run_until_complete(delete_keys(redis, deployment.key_prefix))
            loop.run_until_complete(pool.close())
    finally:
        loop.run_until_complete(redis.aclose())
        loop.close()


async def delete_keys(redis: aioredis.Redis, prefix: str) -> None:
    """Delete every key that starts with ``prefix``."""
    batch = [k async for k in redis.scan_iter(match=f"{prefix}*", count=1000)]
    if batch:
        await redis.delete(*batch)
