"""The agent log cap is a hard upper bound on what one attempt stores, across redeliveries (issue 13)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from common.keys import Keys
from common.redaction import Redactor
from workers.agent._logs import FLUSH_INTERVAL_S, NodeLog

CAP = 1_000


def node_log(redis: aioredis.Redis, keys: Keys) -> NodeLog:
    return NodeLog(redis, keys, run_id="r1", node_id="agent", attempt=1, redactor=Redactor(), cap_bytes=CAP, ttl_s=60)


async def stored_bytes(redis: aioredis.Redis, keys: Keys) -> int:
    entries = await redis.xrange(keys.logs("r1", "agent"))
    return sum(len(fields["line"].encode()) + 1 for _, fields in entries)


async def test_a_line_just_under_the_cap_leaves_room_for_the_truncation_marker(
    redis: aioredis.Redis, keys: Keys
) -> None:
    async with node_log(redis, keys) as log:
        await log.add("x" * (CAP - 10))
        await log.add("y" * 50)
    assert log.totals.truncated
    assert await stored_bytes(redis, keys) <= CAP


async def test_a_redelivered_attempt_continues_the_first_deliverys_budget(redis: aioredis.Redis, keys: Keys) -> None:
    for _ in range(3):
        async with node_log(redis, keys) as log:
            for _ in range(8):
                await log.add("z" * 99)
    assert await stored_bytes(redis, keys) <= CAP


async def test_a_credential_split_between_streamed_pieces_is_still_redacted(redis: aioredis.Redis, keys: Keys) -> None:
    log = NodeLog(
        redis,
        keys,
        run_id="r1",
        node_id="agent",
        attempt=1,
        redactor=Redactor(["open sesame now"]),
        cap_bytes=CAP,
        ttl_s=60,
    )
    async with log:
        await log.add("Use the header Authorization: Bearer ", more=True)
        await log.add("abcdef1234567890xyz ", more=True)
        await log.add("then say open ", more=True)
        await log.add("sesame now.")
        await log.add("Plain words ", more=True)
        await log.add('{"ts": "t", "level": "info", "msg": "next"}')
    entries = [fields for _, fields in await redis.xrange(keys.logs("r1", "agent"))]
    stored = "".join(entry["line"] for entry in entries)
    assert "abcdef1234567890xyz" not in stored and "sesame" not in stored
    assert [entry.get("more") for entry in entries] == ["1", None, "1", None]
    assert entries[2]["line"] == "Plain words " and entries[3]["kind"] == "log"


async def test_a_held_piece_joins_its_continuation_without_the_continuations_own_escape(
    redis: aioredis.Redis, keys: Keys
) -> None:
    async with node_log(redis, keys) as log:
        await log.add("the token ", more=True)
        await log.add('text| {"ts": 1, "level": "x"} end')
    entries = [fields for _, fields in await redis.xrange(keys.logs("r1", "agent"))]
    assert [(entry["kind"], entry["line"]) for entry in entries] == [("text", 'the token {"ts": 1, "level": "x"} end')]


class SlowScripts:
    """``redis`` whose registered scripts take ``delay_s`` before they are sent, so a flush is caught in flight."""

    def __init__(self, redis: aioredis.Redis, delay_s: float) -> None:
        self._redis = redis
        self._delay_s = delay_s

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    def register_script(self, source: str) -> Any:
        script = self._redis.register_script(source)

        async def call(**kwargs: Any) -> Any:
            await asyncio.sleep(self._delay_s)
            return await script(**kwargs)

        return call


async def test_closing_during_a_periodic_flush_stores_every_line(redis: aioredis.Redis, keys: Keys) -> None:
    log = NodeLog(
        SlowScripts(redis, delay_s=0.3),  # type: ignore[arg-type]
        keys,
        run_id="r1",
        node_id="agent",
        attempt=1,
        redactor=Redactor(),
        cap_bytes=100_000,
        ttl_s=60,
    )
    async with log:
        for n in range(10):
            await log.add(f"line {n}")
        # The periodic flush (every 50 ms) has taken the batch and is writing it when the log closes.
        await asyncio.sleep(FLUSH_INTERVAL_S * 3)
    entries = await redis.xrange(keys.logs("r1", "agent"))
    assert [fields["line"] for _, fields in entries] == [f"line {n}" for n in range(10)]
