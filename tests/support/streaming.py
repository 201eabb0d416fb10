"""Helpers for streaming tests: in-process uvicorn servers, API keys, and WebSocket/SSE watchers that resume."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from common.auth import ensure_tenant, generate_api_key, hash_api_key
from common.runs.start import RunStart, start_run
from common.workflow.compiler import compile_definition
from tests.support.engine import Engine

TERMINAL = frozenset({"run_succeeded", "run_failed", "run_cancelled", "run_timed_out"})


@contextlib.asynccontextmanager
async def serving(config: uvicorn.Config) -> AsyncIterator[int]:
    """Serve ``config`` (port 0 allowed) in this event loop; yields the bound port."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before starting")
            await asyncio.sleep(0.01)
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def new_key(pool: asyncpg.Pool, tenant: str) -> str:
    """A fresh member key of ``tenant`` (created if needed)."""
    await ensure_tenant(pool, tenant)
    raw = generate_api_key()
    await pool.execute(
        "INSERT INTO api_keys (tenant_id, name, owner, role, key_hash) VALUES ($1, 'test', 'test', 'editor', $2)",
        tenant,
        hash_api_key(raw),
    )
    return raw


def delay_chain(n: int, seconds: float) -> dict[str, Any]:
    """A linear workflow of ``n`` delay nodes."""
    nodes = [{"id": f"d{i}", "type": "delay", "config": {"seconds": seconds}} for i in range(n)]
    return {
        "name": f"delays-{n}",
        "nodes": nodes,
        "edges": [{"from": f"d{i}", "to": f"d{i + 1}"} for i in range(n - 1)],
    }


@dataclass
class WsWatcher:
    """Follows one run over WebSocket, reconnecting with ``after`` (to the next url in turn) until it ends."""

    urls: list[str]
    run_id: str
    key: str
    events: list[dict[str, Any]] = field(default_factory=list)
    connects: int = 0
    closes: list[int] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    _turn: int = 0

    @property
    def last_id(self) -> str:
        return self.events[-1]["id"] if self.events else "0-0"

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1]["type"] in TERMINAL

    async def session(self, *, stop_after: int | None = None) -> None:
        """One connection: read until the server closes it, or leave after ``stop_after`` new events."""
        url = self.urls[self._turn % len(self.urls)]
        self._turn += 1
        headers = {"Authorization": f"Bearer {self.key}"}
        self.connects += 1
        async with connect(f"{url}/ws/runs/{self.run_id}?after={self.last_id}", additional_headers=headers) as ws:
            received = 0
            try:
                async for message in ws:
                    event = json.loads(message)
                    self.events.append(event)
                    self.latencies_s.append(time.time() - event["ts"] / 1000)
                    received += 1
                    if stop_after is not None and received >= stop_after:
                        return
            except ConnectionClosed:
                pass
            if ws.close_code is not None:
                self.closes.append(ws.close_code)

    async def follow(self, *, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        """Sessions until the terminal event arrived; connection failures move on to the next url."""
        async with asyncio.timeout(timeout_s):
            while not self.ended:
                try:
                    await self.session()
                except (OSError, ConnectionClosed):
                    await asyncio.sleep(0.05)
        return self.events


async def sse_session(
    client: httpx.AsyncClient, run_id: str, key: str, events: list[dict[str, Any]], *, stop_after: int | None = None
) -> None:
    """Read the run's SSE stream, resuming with ``Last-Event-ID``; leave after ``stop_after`` new events."""
    headers = {"Authorization": f"Bearer {key}"}
    if events:
        headers["Last-Event-ID"] = events[-1]["id"]
    received = 0
    async with client.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event_id = None
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                event = json.loads(line[6:])
                assert event["id"] == event_id
                events.append(event)
                received += 1
                if stop_after is not None and received >= stop_after:
                    return


async def submit_as(engine: Engine, definition: dict[str, Any], run_id: str) -> str:
    """Start a run of ``definition`` under a chosen id (so a client can watch it before it exists)."""
    ir = compile_definition(definition, max_agents=engine.max_agents).ir
    start = RunStart(
        run_id=run_id,
        tenant_id="tenant-test",
        workflow_id="wf-test",
        workflow_name=definition.get("name") or "test",
        version=1,
        inputs={},
    )
    await start_run(engine.scripts, start, ir, max_agents=engine.max_agents)
    return run_id


class RawWsClient:
    """A bare WebSocket client with a tiny receive buffer that reads only when told: a stalled browser tab."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, path: str, key: str) -> RawWsClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {key}\r\n\r\n".encode()
        )
        status = await reader.readuntil(b"\r\n\r\n")
        assert status.startswith(b"HTTP/1.1 101"), status
        return cls(reader, writer)

    async def messages(self) -> tuple[list[str], int | None]:
        """Every text message until the close frame, and the close code."""
        texts: list[str] = []
        while True:
            head = await self.reader.readexactly(2)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length >= 126:
                length = int.from_bytes(await self.reader.readexactly(2 if length == 126 else 8), "big")
            payload = await self.reader.readexactly(length)
            if opcode == 0x1:
                texts.append(payload.decode())
            elif opcode == 0x8:
                self.writer.close()
                return texts, int.from_bytes(payload[:2], "big") if payload else None
