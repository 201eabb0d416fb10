"""Revoked API keys end the streams they opened: WebSockets (fanout) and SSE (API) outlive a single request check.

A revocation through the API is published on one Redis channel and reaches every process at once; each process also
re-reads the keys its streams use every ``key_recheck_s``, which catches keys revoked or deleted in Postgres
directly and revocations published while its subscription was down. An API process also drops a revoked key from
its ``KeyCache``, and may hang other invalidations (``on_message``) on the same subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator

import asyncpg
import redis.asyncio as aioredis

from common.auth import KeyCache, Principal
from common.keys import Keys
from common.metrics import Metrics
from common.periodic import PeriodicTask
from common.retry import Retry

logger = logging.getLogger(__name__)


async def publish_revocation(redis: aioredis.Redis, keys: Keys, key_id: str) -> None:
    """Tell every process's ``KeyWatch`` that ``key_id`` no longer works."""
    await redis.publish(keys.key_revocations(), key_id)


class KeyWatch:
    """Hands each stream an event that is set when its key is revoked or deleted.

    ``async with`` starts the subscription and the periodic re-check, and stops them after.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        pool: asyncpg.Pool,
        keys: Keys,
        recheck_s: float,
        *,
        metrics: Metrics | None = None,
        cache: KeyCache | None = None,
    ) -> None:
        self._redis = redis
        self._pool = pool
        self._cache = cache
        self._handlers: dict[str, Callable[[str], None]] = {keys.key_revocations(): self.revoke}
        self._watched: dict[str, set[asyncio.Event]] = {}
        self._stopping = asyncio.Event()
        retry = Retry("key_watch", metrics=metrics)
        self._retry = retry
        self._recheck = PeriodicTask(self._recheck_all, recheck_s, retry=retry, stage="recheck")
        self._tasks: list[asyncio.Task[None]] = []

    def on_message(self, channel: str, handler: Callable[[str], None]) -> None:
        """Call ``handler`` with each message published on ``channel`` (register before ``async with``)."""
        self._handlers[channel] = handler

    async def __aenter__(self) -> KeyWatch:
        self._tasks = [asyncio.create_task(self._recheck.run()), asyncio.create_task(self._subscription())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop listening and re-checking. Idempotent."""
        self._stopping.set()
        await self._recheck.shutdown()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    @contextlib.contextmanager
    def watch(self, principal: Principal) -> Iterator[asyncio.Event]:
        """An event set once ``principal``'s key is revoked, for as long as the block runs.

        The bootstrap key (from settings) and run-scoped agent tokens (which expire) are not API keys: never set.
        """
        revoked = asyncio.Event()
        if principal.is_bootstrap or principal.run_id is not None:
            yield revoked
            return
        self._watched.setdefault(principal.key_id, set()).add(revoked)
        try:
            yield revoked
        finally:
            events = self._watched.get(principal.key_id, set())
            events.discard(revoked)
            if not events:
                self._watched.pop(principal.key_id, None)

    def revoke(self, key_id: str) -> None:
        """Drop ``key_id`` from the key cache and set the events of every stream of it."""
        if self._cache is not None:
            self._cache.forget_key(key_id)
        events = self._watched.get(key_id, set())
        if events:
            logger.info("API key %s revoked: ending its %d stream(s)", key_id, len(events))
        for event in events:
            event.set()

    async def _recheck_all(self) -> None:
        watched = list(self._watched)
        if not watched:
            return
        rows = await self._pool.fetch(
            "SELECT id FROM api_keys WHERE id = ANY($1::text[]) AND revoked_at IS NULL", watched
        )
        valid = {row["id"] for row in rows}
        for key_id in watched:
            if key_id not in valid:
                self.revoke(key_id)

    async def _subscription(self) -> None:
        while await self._retry.until_done("subscribe", self._listen, self._stopping):
            pass

    async def _listen(self) -> None:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(*self._handlers)
            while not self._stopping.is_set():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message["type"] == "message":
                    self._handlers[str(message["channel"])](str(message["data"]))
        finally:
            with contextlib.suppress(Exception):  # the connection may be the thing that failed
                await pubsub.aclose()
