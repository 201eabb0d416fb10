"""One node execution's log: classify and redact each line, store it in ``logs:{R}:<node>`` in small batches with
``log`` events, cap it, and archive it to Postgres ``node_logs`` at the end.

Entry ids are ``<attempt>-<n>`` (n counts the attempt's stored lines from 1), so the archive in Postgres can hand out
the same cursors once the stream has expired.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.agent_protocol import TEXT_ESCAPE, LineKind, classify_line
from common.keys import Keys
from common.redaction import Redactor
from common.retry import sleep_unless
from common.runs.messages import Event

logger = logging.getLogger(__name__)

EVENTS_MAXLEN = 100_000
MAX_SEQ = 2**64 - 1
FLUSH_INTERVAL_S = 0.05
FLUSH_LINES = 100
# A ``log`` event carries the start of each line only, and at most this much text: the stream holds the whole line.
EVENT_LINE_CHARS = 2_000
EVENT_TEXT_CHARS = 16_000
_ARCHIVE_PAGE = 1_000
# One call appends a whole batch: packing a hundred XADDs client-side costs more than the lines themselves.
# KEYS: the log stream, the run's events stream. ARGV: attempt, ts, events maxlen, event count, the events' JSON,
# then id, kind, line and more ("1" for a piece of a line the next entry continues, else "") for every line.
_APPEND_LUA = """
local attempt, ts, maxlen, events = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
for i = 5, 4 + events do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', maxlen, '*', 'e', ARGV[i])
end
for i = 5 + events, #ARGV, 4 do
  if ARGV[i + 3] == '1' then
    redis.call('XADD', KEYS[1], ARGV[i], 'line', ARGV[i + 2], 'kind', ARGV[i + 1], 'ts', ts, 'attempt', attempt,
      'more', '1')
  else
    redis.call('XADD', KEYS[1], ARGV[i], 'line', ARGV[i + 2], 'kind', ARGV[i + 1], 'ts', ts, 'attempt', attempt)
  end
end
return #ARGV
"""
_ARCHIVE_SQL = """
INSERT INTO node_logs (run_id, node_id, attempt, lines, bytes, truncated, text)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (run_id, node_id, attempt) DO UPDATE
SET lines = EXCLUDED.lines, bytes = EXCLUDED.bytes, truncated = EXCLUDED.truncated, text = EXCLUDED.text
"""


@dataclass
class LogTotals:
    """What one execution printed (``lines``/``bytes``) and what of it was stored."""

    lines: int = 0
    bytes: int = 0
    stored_lines: int = 0
    stored_bytes: int = 0
    truncated: bool = False


def log_entry_id(attempt: int, n: int) -> str:
    """The stream id of the ``n``-th stored line (from 1) of ``attempt``."""
    return f"{attempt}-{n}"


def truncation_marker(cap_bytes: int) -> str:
    """The system log line stored where the cap cut the log off."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    message = f"log truncated at {cap_bytes} bytes: later lines are counted, not stored"
    return json.dumps({"ts": ts, "level": "warning", "msg": message, "event": "log_truncated"})


class NodeLog:
    """Collects one execution's lines; use ``async with``: it flushes every ~50 ms while open and at the end."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        run_id: str,
        node_id: str,
        attempt: int,
        redactor: Redactor,
        cap_bytes: int,
        ttl_s: int,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._stream = keys.logs(run_id, node_id)
        self.run_id = run_id
        self.node_id = node_id
        self.attempt = attempt
        self._redactor = redactor
        self._cap = cap_bytes
        self._ttl_s = ttl_s
        self.totals = LogTotals()
        self._marker_bytes = len(truncation_marker(cap_bytes).encode()) + 1
        self._seq = 0
        self._pending: list[tuple[str, LineKind, str, str]] = []
        self._held = ""
        self._lock = asyncio.Lock()
        self._closing = asyncio.Event()
        self._ticker: asyncio.Task[None] | None = None
        self._append = redis.register_script(_APPEND_LUA)

    async def __aenter__(self) -> NodeLog:
        # A redelivered attempt continues its first delivery's numbering, so ids keep increasing, and its
        # budget: the cap bounds what the attempt stores, however often it is delivered.
        last = await self._redis.xrevrange(self._stream, "+", "-", count=1)
        if last:
            last_attempt, last_seq = (int(part) for part in last[0][0].split("-"))
            if last_attempt == self.attempt:
                self._seq = last_seq
                self.totals.stored_bytes = await self._stored_bytes()
                self.totals.truncated = self.totals.stored_bytes + self._marker_bytes > self._cap
        self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        # Shielded: a cancelled node still keeps what it printed.
        await asyncio.shield(self._close())

    async def _close(self) -> None:
        # The flusher is told to stop, not cancelled: a cancel in the middle of a flush would drop the batch it took.
        self._closing.set()
        if self._ticker is not None:
            await self._ticker
        await self._finish()

    async def add(self, line: str, *, more: bool = False) -> LineKind:
        """Count, classify, redact and queue ``line`` (``more``: a piece of a line that the next entry continues);
        returns its kind. Waits while a full batch is written."""
        if self._held:
            held, self._held = self._held, ""
            if classify_line(line) == "text":
                # The continuation was escaped as if it began a line; inside one it needs no escape of its own.
                line = _as_text(held + line.removeprefix(TEXT_ESCAPE))
            else:
                await self._store(held, more=True)
        # A piece whose end may be the start of a secret waits for the rest: redaction sees them together.
        if more and self._redactor.may_continue(line):
            self._held = line
            return "text"
        return await self._store(line, more=more)

    async def _store(self, line: str, *, more: bool) -> LineKind:
        kind = classify_line(line)
        size = len(line.encode()) + 1
        self.totals.lines += 1
        self.totals.bytes += size
        if self.totals.truncated:
            return kind
        text = self._redactor.redact(line)
        stored = len(text.encode()) + 1
        # Room for the marker stays reserved, so the stored log never passes the cap, marker included.
        if self.totals.stored_bytes + stored + self._marker_bytes > self._cap:
            self.totals.truncated = True
            if self.totals.stored_bytes + self._marker_bytes <= self._cap:
                self._queue("log", truncation_marker(self._cap))
            await self.flush()
            return kind
        self.totals.stored_lines += 1
        self.totals.stored_bytes += stored
        self._queue(kind, text, more=more)
        if len(self._pending) >= FLUSH_LINES:
            await self.flush()
        return kind

    def _queue(self, kind: LineKind, text: str, *, more: bool = False) -> None:
        self._seq += 1
        self._pending.append((log_entry_id(self.attempt, self._seq), kind, text, "1" if more else ""))

    async def flush(self) -> None:
        """Write the queued lines to the stream and announce them in ``log`` events."""
        async with self._lock:
            batch, self._pending = self._pending, []
            if not batch:
                return
            ts = int(time.time() * 1000)
            events = [
                Event(type="log", run_id=self.run_id, node_id=self.node_id, ts=ts, data=data).stored()
                for data in _event_payloads(self.attempt, batch)
            ]
            args: list[str | int] = [self.attempt, ts, EVENTS_MAXLEN, len(events), *events]
            for entry in batch:
                args.extend(entry)
            await self._append(keys=[self._stream, self._keys.events(self.run_id)], args=args)

    async def _tick(self) -> None:
        while not self._closing.is_set():
            await sleep_unless(self._closing, FLUSH_INTERVAL_S)
            try:
                await self.flush()
            except Exception:
                logger.exception("log lines of %s/%s could not be written; retrying", self.run_id, self.node_id)

    async def _finish(self) -> None:
        if self._held:
            held, self._held = self._held, ""
            await self._store(held, more=True)
        await self.flush()
        await self._redis.expire(self._stream, self._ttl_s)
        if self.totals.truncated:
            event = Event(
                type="log",
                run_id=self.run_id,
                node_id=self.node_id,
                ts=int(time.time() * 1000),
                data={
                    "attempt": self.attempt,
                    "truncated": True,
                    "dropped_lines": self.totals.lines - self.totals.stored_lines,
                    "dropped_bytes": self.totals.bytes - self.totals.stored_bytes,
                },
            )
            await self._redis.xadd(
                self._keys.events(self.run_id), {"e": event.stored()}, maxlen=EVENTS_MAXLEN, approximate=True
            )

    async def _pages(self) -> AsyncIterator[list[tuple[str, dict[str, str]]]]:
        """This attempt's stored entries (every delivery of it), a page at a time."""
        start = log_entry_id(self.attempt, 1)
        while True:
            page = await self._redis.xrange(self._stream, start, log_entry_id(self.attempt, MAX_SEQ), _ARCHIVE_PAGE)
            yield page
            if len(page) < _ARCHIVE_PAGE:
                return
            start = "(" + page[-1][0]

    async def _stored_bytes(self) -> int:
        """Bytes this attempt's earlier deliveries stored."""
        return sum([len(fields["line"].encode()) + 1 async for page in self._pages() for _, fields in page])

    async def archive(self, pool: asyncpg.Pool) -> None:
        """Copy this attempt's stored lines (every delivery of it) to ``node_logs``, with the totals."""
        # Joined page by page, so the peak is about twice the stored text, never the whole stream's entries.
        pages = ["\n".join(fields["line"] for _, fields in page) async for page in self._pages() if page]
        text = "\n".join(pages)
        del pages
        await pool.execute(
            _ARCHIVE_SQL,
            self.run_id,
            self.node_id,
            self.attempt,
            self.totals.lines,
            self.totals.bytes,
            self.totals.truncated,
            text,
        )


def _as_text(line: str) -> str:
    """``line`` escaped when joining held pieces made it read as a system log, a call or a result line."""
    return line if classify_line(line) == "text" else TEXT_ESCAPE + line


def _event_payloads(attempt: int, batch: list[tuple[str, LineKind, str, str]]) -> list[dict[str, Any]]:
    """The batch as ``log`` event payloads of at most ``EVENT_TEXT_CHARS`` characters of line text each."""
    payloads: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    size = 0
    for entry_id, kind, text, more in batch:
        item: dict[str, Any] = {"id": entry_id, "kind": kind, "line": text[:EVENT_LINE_CHARS]}
        if len(text) > EVENT_LINE_CHARS:
            item["clipped"] = True
        if more:
            item["more"] = True
        if lines and size + len(item["line"]) > EVENT_TEXT_CHARS:
            payloads.append({"attempt": attempt, "lines": lines})
            lines, size = [], 0
        lines.append(item)
        size += len(item["line"])
    if lines:
        payloads.append({"attempt": attempt, "lines": lines})
    return payloads
