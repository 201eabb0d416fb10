"""Turning a runtime's byte output into lines: splitting with a length cap, and bridging blocking readers."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime

_QUEUE_CHUNKS = 64
_PUT_POLL_S = 0.5


class LineSplitter:
    """Splits a byte stream into text lines; a line longer than ``max_line_bytes`` is cut into pieces.

    Memory stays within one line however the bytes arrive.
    """

    def __init__(self, max_line_bytes: int) -> None:
        self._max = max_line_bytes
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[str]:
        """Add ``chunk``; return the lines it completed."""
        self._buffer += chunk
        lines: list[str] = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            self._cut(end, 1, lines)
        while len(self._buffer) >= self._max:
            self._cut(self._max, 0, lines)
        return lines

    def end(self) -> list[str]:
        """The last line when the stream ended without a newline."""
        lines: list[str] = []
        if self._buffer:
            self._cut(len(self._buffer), 0, lines)
        return lines

    def _cut(self, end: int, skip: int, lines: list[str]) -> None:
        piece = bytes(self._buffer[:end])
        del self._buffer[: end + skip]
        while len(piece) > self._max:
            lines.append(_decode(piece[: self._max]))
            piece = piece[self._max :]
        lines.append(_decode(piece))


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace").removesuffix("\r")


def stderr_record(line: str) -> str:
    """A stderr line as a system log record, so tracebacks land in the log classified as logs."""
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    return json.dumps({"ts": ts, "level": "error", "stream": "stderr", "msg": line}, ensure_ascii=False)


async def chunks_from_thread(produce: Callable[[], Iterable[bytes]]) -> AsyncIterator[bytes]:
    """Iterate a blocking byte iterator (a Docker or Kubernetes log stream) in a thread, with backpressure.

    The thread waits while the bounded queue is full; leaving the loop early stops it at its next chunk.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=_QUEUE_CHUNKS)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        try:
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        except RuntimeError:  # the loop has closed: nobody reads any more
            return False
        while True:
            try:
                future.result(timeout=_PUT_POLL_S)
                return True
            except TimeoutError:
                if stop.is_set():
                    future.cancel()
                    return False

    def pump() -> None:
        try:
            for chunk in produce():
                if stop.is_set() or not put(chunk):
                    return
        except BaseException as exc:  # handed to the reader, which raises it in its own task
            put(exc)
            return
        put(None)

    thread = threading.Thread(target=pump, name="agent-log-follow", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
