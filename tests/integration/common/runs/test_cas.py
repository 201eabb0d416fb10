"""CAS: put/get through Redis, fall back to Postgres and re-warm Redis, inline vs referenced outputs."""

from __future__ import annotations

import hashlib
import json

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.errors import AobError
from common.keys import Keys
from common.runs.cas import Cas, is_cas_ref
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.faults import Flaky


async def test_put_returns_content_address_and_get_reads_redis(redis: aioredis.Redis, keys: Keys) -> None:
    cas = Cas(redis, keys)
    data = json.dumps({"body": "ünïcode", "items": list(range(10))})

    ref = await cas.put(data)
    again = await cas.put(data)

    digest = hashlib.sha256(data.encode()).hexdigest()
    assert ref == again == f"cas://sha256:{digest}"
    assert await redis.get(keys.cas(digest)) == data
    # No expiry until Postgres holds it: the recorder gives it one after copying it.
    assert await redis.ttl(keys.cas(digest)) == -1
    entries = [json.loads(fields["l"]) for _, fields in await redis.xrange(keys.shard_for(digest).ledger)]
    assert [(e["kind"], e["digest"]) for e in entries] == [("blob", digest)] * 2
    assert await cas.get(ref) == data


async def test_put_does_not_wait_for_postgres(redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool) -> None:
    down = Flaky(pg_pool, "execute", times=100, error=lambda: OSError("postgres is down"))
    cas = Cas(redis, keys, down)
    ref = await cas.put('{"big": true}')
    assert await cas.get(ref) == '{"big": true}'
    assert down.failures == 0


async def test_the_recorder_persists_blobs_then_get_falls_back_to_postgres(
    deployment: Deployment, redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool
) -> None:
    cas = Cas(redis, keys, pg_pool)
    data = '{"big": "' + "x" * 1000 + '"}'
    ref = await cas.put(data)
    digest = ref.removeprefix("cas://sha256:")
    async with Engine(deployment, redis, pool=pg_pool):

        async def persisted() -> asyncpg.Record | None:
            row: asyncpg.Record | None = await pg_pool.fetchrow(
                "SELECT data, size FROM blobs WHERE digest = $1", digest
            )
            return row

        row = await eventually(persisted)
        assert (row["data"], row["size"]) == (data, len(data.encode()))
        await eventually(lambda: _expiring(redis, keys.cas(digest)))
    await redis.delete(keys.cas(digest))
    assert await cas.get(ref) == data
    assert await redis.get(keys.cas(digest)) == data


async def _expiring(redis: aioredis.Redis, key: str) -> bool:
    return bool(0 < await redis.ttl(key) <= 7 * 24 * 3600)


async def test_unknown_and_malformed_refs_raise(redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool) -> None:
    cas = Cas(redis, keys, pg_pool)

    with pytest.raises(AobError, match="not found in Redis or Postgres"):
        await cas.get("cas://sha256:" + "0" * 64)
    with pytest.raises(AobError, match=r"expected 'cas://sha256:<64 lower-case hex digits>', got 'cas://md5:abc'"):
        await cas.get("cas://md5:abc")
    with pytest.raises(AobError, match=r"no Postgres configured"):
        await Cas(redis, keys).get("cas://sha256:" + "1" * 64)


async def test_store_output_inlines_small_values_and_references_large_ones(
    redis: aioredis.Redis, keys: Keys, pg_pool: asyncpg.Pool
) -> None:
    cas = Cas(redis, keys, pg_pool)
    small = {"ok": True, "n": 1}
    large = {"text": "y" * 200}
    exact = "z" * 8  # JSON text '"zzzzzzzz"' is exactly 10 bytes

    inline = await cas.store_output(small, inline_max_bytes=100)
    referenced = await cas.store_output(large, inline_max_bytes=100)
    at_limit = await cas.store_output(exact, inline_max_bytes=10)
    over_limit = await cas.store_output(exact, inline_max_bytes=9)

    assert not is_cas_ref(inline)
    assert json.loads(inline) == small
    assert is_cas_ref(referenced)
    assert not is_cas_ref(at_limit)
    assert is_cas_ref(over_limit)
    for stored, value in ((inline, small), (referenced, large), (at_limit, exact), (over_limit, exact)):
        assert await cas.load_output(stored) == value


async def test_inline_string_that_looks_like_a_ref_stays_a_value(redis: aioredis.Redis, keys: Keys) -> None:
    cas = Cas(redis, keys)
    value = "cas://sha256:" + "0" * 64

    stored = await cas.store_output(value, inline_max_bytes=1000)

    assert not is_cas_ref(stored)
    assert await cas.load_output(stored) == value
