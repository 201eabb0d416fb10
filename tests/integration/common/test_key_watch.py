"""KeyWatch: a published revocation or a key gone from Postgres sets the events of that key's streams only."""

from __future__ import annotations

import asyncio

import asyncpg
import redis.asyncio as aioredis

from common.auth import BOOTSTRAP_KEY_ID, DEFAULT_TENANT, Principal, ensure_tenant, generate_api_key, hash_api_key
from common.key_watch import KeyWatch, publish_revocation
from common.keys import Keys
from tests.support.eventually import eventually


async def _key(pool: asyncpg.Pool) -> Principal:
    await ensure_tenant(pool, "acme")
    key_id = await pool.fetchval(
        "INSERT INTO api_keys (tenant_id, role, owner, key_hash) VALUES ('acme', 'editor', 'k', $1) RETURNING id",
        hash_api_key(generate_api_key()),
    )
    return Principal(key_id, "acme", "editor", "k", owner="k")


async def test_a_published_revocation_sets_the_streams_of_that_key(
    redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    revoked_key, other_key = await _key(pg_pool), await _key(pg_pool)
    async with KeyWatch(redis, pg_pool, keys, recheck_s=3600) as watch:
        with watch.watch(revoked_key) as first, watch.watch(revoked_key) as second, watch.watch(other_key) as other:

            async def published() -> bool:
                # The subscription starts in the background: publish until it has heard.
                await publish_revocation(redis, keys, revoked_key.key_id)
                return first.is_set()

            await eventually(published, 5, interval_s=0.05)
            await asyncio.wait_for(second.wait(), 1)
            assert not other.is_set()


async def test_the_periodic_check_catches_keys_revoked_or_deleted_in_postgres(
    redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    revoked_key, deleted_key, kept_key = await _key(pg_pool), await _key(pg_pool), await _key(pg_pool)
    bootstrap = Principal(BOOTSTRAP_KEY_ID, DEFAULT_TENANT, "admin", "bootstrap admin", is_bootstrap=True)
    async with KeyWatch(redis, pg_pool, keys, recheck_s=0.05) as watch:
        with (
            watch.watch(revoked_key) as revoked,
            watch.watch(deleted_key) as deleted,
            watch.watch(kept_key) as kept,
            watch.watch(bootstrap) as admin,
        ):
            await pg_pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", revoked_key.key_id)
            await pg_pool.execute("DELETE FROM api_keys WHERE id = $1", deleted_key.key_id)
            await asyncio.wait_for(asyncio.gather(revoked.wait(), deleted.wait()), 5)
            assert not kept.is_set() and not admin.is_set()
