"""An in-process API for integration tests: the app over ASGI, with the real engine running its runs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import httpx
import redis.asyncio as aioredis
import uvicorn

from common.settings import ApiSettings
from orchestrator import create_app
from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.openapi_check import AnswerCheck
from workers import NodeHandler

TERMINAL = {"succeeded", "failed", "cancelled", "timed_out"}


class Api:
    """An ``httpx.AsyncClient`` on the app, authenticated as the bootstrap admin unless told otherwise."""

    def __init__(self, client: httpx.AsyncClient, engine: Engine | None) -> None:
        self.client = client
        self.engine = engine
        self.admin = {"Authorization": f"Bearer {ADMIN_KEY}"}

    async def request(self, method: str, path: str, *, key: dict[str, str] | None = None, **kw: Any) -> httpx.Response:
        return await self.client.request(method, path, headers={**(key or self.admin), **kw.pop("headers", {})}, **kw)

    async def new_key(
        self, tenant: str | None = None, role: str | None = "admin", name: str | None = None, owner: str | None = None
    ) -> dict[str, str]:
        """Auth headers of a new key in ``tenant`` (default: the admin's; role None: the API's default role);
        unnamed keys get a name (and so an owner) of their own."""
        body: dict[str, Any] = {"name": name or f"test-{uuid.uuid4().hex[:8]}"}
        if role is not None:
            body["role"] = role
        if owner is not None:
            body["owner"] = owner
        if tenant is not None:
            body["tenant"] = tenant
        response = await self.request("POST", "/api/v1/api-keys", json=body)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['key']}"}

    async def create_workflow(
        self, name: str, definition: dict[str, Any], *, key: dict[str, str] | None = None
    ) -> dict[str, Any]:
        body = {"name": name, "definition": definition}
        response = await self.request("POST", "/api/v1/workflows", key=key, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def start_run(
        self, workflow: str, inputs: dict[str, Any] | None = None, *, key: dict[str, str] | None = None
    ) -> dict[str, Any]:
        response = await self.request(
            "POST", "/api/v1/runs", key=key, json={"workflow_id": workflow, "inputs": inputs or {}}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_run(
        self, run_id: str, *, key: dict[str, str] | None = None, timeout_s: float = 15.0
    ) -> dict[str, Any]:
        """The run once it has ended."""

        async def ended() -> dict[str, Any]:
            response = await self.request("GET", f"/api/v1/runs/{run_id}", key=key)
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert body["status"] in TERMINAL, f"run {run_id} is {body['status']}"
            return body

        return await eventually(ended, timeout_s)


@contextlib.asynccontextmanager
async def running_api(
    deployment: Deployment,
    redis: aioredis.Redis,
    pool: asyncpg.Pool,
    *,
    engine: bool = True,
    handlers: Sequence[NodeHandler] = (),
) -> AsyncIterator[Api]:
    """The app (and, with ``engine``, coordinator + builtin worker + recorder) until the block ends."""
    app = create_app(deployment.api(), redis=redis, pool=pool)
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(app.router.lifespan_context(app))
        runner = None
        if engine:
            runner = await stack.enter_async_context(Engine(deployment, redis, handlers=handlers, pool=pool))
        # Every answer is checked against the app's own OpenAPI document.
        hooks = {"response": [AnswerCheck(app).hook]}
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aob", event_hooks=hooks)
        )
        yield Api(client, runner)


def chain_definition(n: int = 2, node_type: str = "noop") -> dict[str, Any]:
    """A linear workflow n0 -> n1 -> ...."""
    nodes = [{"id": f"n{i}", "type": node_type, "config": {}} for i in range(n)]
    return {"nodes": nodes, "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]}


@contextlib.asynccontextmanager
async def served_api(
    settings: ApiSettings, redis: aioredis.Redis | None = None, pool: asyncpg.Pool | None = None
) -> AsyncIterator[str]:
    """The app served by uvicorn on a free 127.0.0.1 port until the block ends; yields its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(settings, redis=redis, pool=pool), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(_started(server), 10)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


def _started(server: uvicorn.Server) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return server.started

    return check
