"""Helpers for streaming tests: in-process uvicorn servers, API keys, and WebSocket/SSE watchers that resume."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from common.auth import ensure_tenant, generate_api_key, hash_api_key

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
        "INSERT INTO api_keys (tenant_id, name, role, key_hash) VALUES ($1, 'test', 'member', $2)",
        tenant,
        hash_api_key(raw),
    )
    return raw


def delay_chain(n: int, seconds: float) -> dict[str, Any]:
    """A linear workflow of ``n`` delay nodes."""
    nodes = [{"id": f"d{i}", "type": "delay", "config": {"seconds": seconds}} for i in range(n)]
    return {"name": f"delays-{n}", "nodes": nodes, "edges": [{"from": f"d{i}", "to": f"d{i + 1}"} for i in range(n - 1)]}


@dataclass
class WsWatcher:
    """Follows one run over WebSocket, reconnecting with ``after`` (to the next url in turn) until it ends."""

    urls: list[str]
    run_id: str
    key: str
    events: list[dict[str, Any]] = field(default_factory=list)
    connects: int = 0
    closes: list[int] = field(default_factory=list)
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
                    self.events.append(json.loads(message))
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
