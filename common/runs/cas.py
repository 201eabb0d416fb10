"""Content-addressed storage of JSON text: hot in Redis, durable in Postgres ``blobs``.

A blob is written to Redis (without expiry) with a ledger entry in one transaction, so storing never waits for
Postgres; the recorder copies it to ``blobs`` and only then gives the Redis copy its expiry.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.errors import AobError
from common.keys import Keys
from common.runs.ledger import BlobEntry

CAS_PREFIX = "cas://sha256:"
DEFAULT_TTL_S = 7 * 24 * 3600
_REF_RE = re.compile(r"^cas://sha256:([0-9a-f]{64})$")


def is_cas_ref(value: str) -> bool:
    """True when ``value`` is a ``cas://`` reference rather than inline JSON (which never starts with ``c``)."""
    return value.startswith("cas://")


class Cas:
    """Stores and fetches blobs by their sha256; Postgres (when given) keeps them past the Redis TTL."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool | None = None, *, ttl_s: int = DEFAULT_TTL_S
    ):
        self._redis = redis
        self._keys = keys
        self._pool = pool
        self._ttl_s = ttl_s

    async def put(self, data: str) -> str:
        """Store ``data``; return its ``cas://sha256:<hex>`` reference."""
        digest = hashlib.sha256(data.encode()).hexdigest()
        async with self._redis.pipeline(transaction=True) as pipe:
            # Same digest means same content: overwriting is harmless (the recorder sets the expiry again).
            pipe.set(self._keys.cas(digest), data)
            pipe.xadd(self._keys.shard_for(digest).ledger, {"l": BlobEntry(digest=digest).model_dump_json()})
            await pipe.execute()
        return CAS_PREFIX + digest

    async def get(self, ref: str) -> str:
        """Return the data behind ``ref``; raise ``AobError`` when it is malformed or stored nowhere."""
        match = _REF_RE.match(ref)
        if match is None:
            raise AobError(f"cas ref: expected 'cas://sha256:<64 lower-case hex digits>', got {ref!r}")
        digest = match.group(1)
        cached = await self._redis.get(self._keys.cas(digest))
        if cached is not None:
            return str(cached)
        if self._pool is not None:
            stored: str | None = await self._pool.fetchval("SELECT data FROM blobs WHERE digest = $1", digest)
            if stored is not None:
                await self._redis.set(self._keys.cas(digest), stored, ex=self._ttl_s)
                return stored
        where = "Redis or Postgres" if self._pool is not None else "Redis (no Postgres configured)"
        raise AobError(f"cas ref {ref}: not found in {where}")

    async def store_output(self, value: Any, inline_max_bytes: int) -> str:
        """Serialise ``value`` to JSON; return it inline if at most ``inline_max_bytes``, else a cas ref."""
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        if len(text.encode()) <= inline_max_bytes:
            return text
        return await self.put(text)

    async def load_output(self, ref_or_json: str) -> Any:
        """Decode what ``store_output`` returned: inline JSON or a cas ref."""
        if is_cas_ref(ref_or_json):
            return json.loads(await self.get(ref_or_json))
        return json.loads(ref_or_json)


async def persist_blobs(redis: aioredis.Redis, keys: Keys, conn: asyncpg.Connection, digests: list[str]) -> list[str]:
    """Copy the Redis blobs ``digests`` to Postgres (in the caller's transaction); returns those copied."""
    # One GET each, pipelined: blobs live in many slots.
    async with redis.pipeline(transaction=False) as pipe:
        for digest in digests:
            pipe.get(keys.cas(digest))
        values = await pipe.execute() if digests else []
    rows = [(digest, data, len(data.encode())) for digest, data in zip(digests, values, strict=True) if data]
    await conn.executemany(
        "INSERT INTO blobs (digest, data, size) VALUES ($1, $2, $3) ON CONFLICT (digest) DO NOTHING", rows
    )
    return [digest for digest, _, _ in rows]


async def expire_persisted(redis: aioredis.Redis, keys: Keys, digests: list[str], ttl_s: int = DEFAULT_TTL_S) -> None:
    """Give blobs Postgres now holds their Redis expiry (reads fall back to Postgres after it)."""
    async with redis.pipeline(transaction=False) as pipe:
        for digest in digests:
            pipe.expire(keys.cas(digest), ttl_s)
        await pipe.execute()
