"""The fanout benchmark's client harness (not a test): many lean WebSocket clients in one process.

Run by ``tests/bench/fanout.py`` as ``python -m tests.bench.fanout_clients <config json>``, one or two processes so
the harness is not the bottleneck. Each client is a bare ``asyncio.Protocol`` (a hand-written handshake and frame
parser: a few microseconds per frame, against tens in a full client library). Like a browser, it offers
``permessage-deflate`` and inflates compressed frames when the server accepts. It prints ``ready`` once every client
is connected, then one JSON line when every client saw its run's terminal event (or the timeout passed): received
latencies per phase (append -> received, in ms, from ``data.t`` set by the appender), frame counts, close codes and
the time the last frame arrived.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import sys
import time
import zlib
from collections import Counter
from typing import Any

_DEFLATE_TAIL = b"\x00\x00\xff\xff"
_TERMINAL = "run_succeeded"


class Results:
    """What every client of this process saw, merged."""

    def __init__(self) -> None:
        self.latencies_ms: dict[str, list[float]] = {}
        self.frames: Counter[str] = Counter()
        self.closes: Counter[int] = Counter()
        self.last_received = 0.0
        self.compressed = 0

    def event(self, text: bytes) -> bool:
        """Record one event frame; True when it is the run's terminal event."""
        now = time.time()
        event = json.loads(text)
        data = event.get("data") or {}
        phase = str(data.get("phase", event.get("type")))
        self.frames[phase] += 1
        if "t" in data:
            self.latencies_ms.setdefault(phase, []).append((now - data["t"]) * 1000)
        self.last_received = now
        return bool(event.get("type") == _TERMINAL)


class LeanClient(asyncio.Protocol):
    """One WebSocket client: handshake, then parse unmasked server frames as they arrive."""

    def __init__(self, host: str, path: str, headers: dict[str, str], results: Results) -> None:
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            + "\r\n"
        ).encode()
        self.results = results
        self.buffer = bytearray()
        self.open = asyncio.get_running_loop().create_future()
        self.done = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.inflate: Any = None
        self.fragments: list[bytes] = []
        self.compressed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        for future in (self.open, self.done):
            if not future.done():
                future.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buffer[:end]).decode("latin-1").lower()
            del self.buffer[: end + 4]
            if not head.startswith("http/1.1 101"):
                self.open.set_exception(ConnectionError(head.splitlines()[0]))
                return
            if "permessage-deflate" in head:
                self.inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            self.open.set_result(None)
        self._frames()

    def _frames(self) -> None:
        buffer = self.buffer
        offset = 0
        while len(buffer) - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length, start = second & 0x7F, offset + 2
            if length == 126:
                if len(buffer) - start < 2:
                    break
                length, start = int.from_bytes(buffer[start : start + 2], "big"), start + 2
            elif length == 127:
                if len(buffer) - start < 8:
                    break
                length, start = int.from_bytes(buffer[start : start + 8], "big"), start + 8
            if len(buffer) - start < length:
                break
            self._frame(first, bytes(buffer[start : start + length]))
            offset = start + length
        del buffer[:offset]

    def _frame(self, first: int, payload: bytes) -> None:
        opcode = first & 0x0F
        if opcode in (0x1, 0x0):
            if opcode == 0x1:
                self.fragments = []
                self.compressed = bool(first & 0x40)
            self.fragments.append(payload)
            if first & 0x80:
                message = b"".join(self.fragments)
                if self.compressed:
                    self.results.compressed += 1
                    message = self.inflate.decompress(message + _DEFLATE_TAIL)
                if self.results.event(message):
                    self._finish(None)
        elif opcode == 0x9:  # ping: answer with a pong (client frames are masked; a zero mask is valid)
            assert self.transport is not None
            self.transport.write(bytes([0x8A, 0x80 | len(payload)]) + b"\x00\x00\x00\x00" + payload)
        elif opcode == 0x8:
            self._finish(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005)

    def _finish(self, code: int | None) -> None:
        if self.done.done():
            return
        self.results.closes[code or 0] += 1
        self.done.set_result(None)
        assert self.transport is not None
        # A close frame (masked, zero key) with code 1000, then hang up.
        self.transport.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
        self.transport.close()


async def main(config: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    results = Results()
    host, port = config["host"], config["port"]
    clients = [LeanClient(f"{host}:{port}", path, config["headers"], results) for path in config["paths"]]
    limit = asyncio.Semaphore(50)

    async def connect(client: LeanClient) -> None:
        async with limit:
            await loop.create_connection(lambda: client, host, port)
            await client.open

    await asyncio.gather(*(connect(c) for c in clients))
    print("ready", flush=True)
    _, pending = await asyncio.wait([c.done for c in clients], timeout=config["timeout_s"])
    summary = {
        "latencies_ms": results.latencies_ms,
        "frames": dict(results.frames),
        "closes": {str(k): v for k, v in results.closes.items()},
        "unfinished": len(pending),
        "last_received": results.last_received,
        "compressed": results.compressed,
    }
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
