"""TtlCache: concurrent misses share one lookup, failures and forgotten lookups are not kept."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from common.ttl_cache import TtlCache


async def test_concurrent_misses_share_one_lookup() -> None:
    cache: TtlCache[str, int] = TtlCache(10)
    calls = 0
    release = asyncio.Event()

    async def lookup() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 7

    waiting = [asyncio.create_task(cache.load("k", lookup)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [7] * 20
    assert calls == 1 and cache.get("k") == 7


async def test_a_failed_lookup_reaches_every_waiter_and_is_not_kept() -> None:
    cache: TtlCache[str, int] = TtlCache(10)

    async def lookup() -> int:
        await asyncio.sleep(0)
        raise ConnectionError("down")

    results = await asyncio.gather(*(cache.load("k", lookup) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    assert cache.get("k") is None


async def test_a_lookup_in_flight_when_forgotten_is_neither_kept_nor_shared() -> None:
    cache: TtlCache[str, str] = TtlCache(10)
    release = asyncio.Event()
    calls: list[str] = []

    def lookup_as(name: str) -> Callable[[], Awaitable[str]]:
        async def lookup() -> str:
            calls.append(name)
            await release.wait()
            return name

        return lookup

    first = asyncio.create_task(cache.load("k", lookup_as("before")))
    await asyncio.sleep(0)
    cache.forget(lambda key, _: key == "k")
    second = asyncio.create_task(cache.load("k", lookup_as("after")))
    await asyncio.sleep(0)
    release.set()
    assert (await first, await second) == ("before", "after")
    assert sorted(calls) == ["after", "before"] and cache.get("k") == "after"


async def test_one_waiter_cancelled_does_not_cancel_the_lookup() -> None:
    cache: TtlCache[str, int] = TtlCache(10)
    release = asyncio.Event()

    async def lookup() -> int:
        await release.wait()
        return 3

    cancelled = asyncio.create_task(cache.load("k", lookup))
    kept = asyncio.create_task(cache.load("k", lookup))
    await asyncio.sleep(0)
    cancelled.cancel()
    release.set()
    assert await kept == 3
    with pytest.raises(asyncio.CancelledError):
        await cancelled
