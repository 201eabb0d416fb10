"""Taking over tokens whose worker died: ``XAUTOCLAIM`` past the visibility timeout, dead-lettering after
too many deliveries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

import redis.asyncio as aioredis
from pydantic import ValidationError

from common.runs.messages import Token
from common.settings import WorkerSettings

logger = logging.getLogger(__name__)

CLAIM_BATCH = 50


class ClaimTarget(Protocol):
    """What the reclaimer needs of the worker it serves: its streams, and somewhere to run or bury entries."""

    id: str

    @property
    def streams(self) -> list[str]: ...

    def group(self, stream: str) -> str: ...

    async def acquire_slot(self) -> None: ...

    def spawn(self, stream: str, entries: list[tuple[str, dict[str, str] | None]]) -> None: ...

    async def dead_letter(
        self, stream: str, entry_id: str, fields: dict[str, str], token: Token | None, reason: str
    ) -> None: ...


class Reclaimer:
    """Periodically claims entries idle longer than the visibility timeout on each of a worker's streams."""

    def __init__(self, worker: ClaimTarget, redis: aioredis.Redis, settings: WorkerSettings) -> None:
        self._worker = worker
        self._redis = redis
        self._min_idle_ms = int(settings.visibility_timeout_s * 1000)
        self._interval_s = settings.visibility_timeout_s / 2
        self._max_deliveries = settings.max_deliveries

    async def run(self, stopping: asyncio.Event) -> None:
        """Sweep every stream each half visibility timeout until ``stopping`` is set."""
        while not stopping.is_set():
            for stream in self._worker.streams:
                await self.sweep(stream)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self._interval_s)

    async def sweep(self, stream: str) -> int:
        """Claim and handle idle entries of ``stream``; returns how many were claimed."""
        group = self._worker.group(stream)
        claimed = 0
        start = "0-0"
        while True:
            # Redis 6.2 replies [next, entries]; 7.x adds the ids of deleted entries as a third element.
            reply: Any = await self._redis.xautoclaim(
                stream, group, self._worker.id, self._min_idle_ms, start_id=start, count=CLAIM_BATCH
            )
            start, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                claimed += 1
                await self._take(stream, group, entry_id, fields)
            if start == "0-0" or not entries:
                return claimed

    async def _take(self, stream: str, group: str, entry_id: str, fields: dict[str, str] | None) -> None:
        pending = await self._redis.xpending_range(stream, group, min=entry_id, max=entry_id, count=1)
        deliveries = int(pending[0]["times_delivered"]) if pending else 1
        if fields and deliveries > self._max_deliveries:
            try:
                token: Token | None = Token.model_validate_json(fields.get("t", ""))
            except ValidationError:
                token = None
            reason = f"delivered {deliveries} times (limit {self._max_deliveries})"
            logger.error("entry %s on %s dead-lettered: %s", entry_id, stream, reason)
            await self._worker.dead_letter(stream, entry_id, fields, token, reason)
            return
        logger.warning("reclaimed %s on %s (delivery %d)", entry_id, stream, deliveries)
        await self._worker.acquire_slot()
        self._worker.spawn(stream, [(entry_id, fields)])
