"""The agent worker through the API: the logs route pages live and archived lines; run-scoped agent tokens."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from tests.integration.workers.agent.test_handler import agent_deployment
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from workers.agent import AgentHandler
from workers.agent._credentials import AgentCredentials


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    handler = AgentHandler(agent_deployment(deployment).worker(), pg_pool, redis)
    async with running_api(deployment, redis, pg_pool, handlers=[handler]) as client:
        yield client


async def finished_agent_run(api: Api, lines: int = 5) -> str:
    definition = {
        "nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "{{ inputs.script | tojson }}"}}],
        "edges": [],
    }
    workflow = await api.create_workflow(f"agent-logs-{uuid.uuid4().hex[:8]}", definition)
    run = await api.start_run(workflow["id"], {"script": {"lines": lines}})
    assert (await api.wait_run(run["id"]))["status"] == "succeeded"
    return str(run["id"])


async def all_pages(api: Api, run_id: str, limit: int, key: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        response = await api.request("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs", key=key, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items.extend(page["items"])
        after = page["next_cursor"]
        if after is None:
            return items


async def test_logs_page_with_after_from_the_stream_then_the_archive(
    api: Api, redis: aioredis.Redis, keys: Keys
) -> None:
    run_id = await finished_agent_run(api, lines=5)
    live = await all_pages(api, run_id, limit=2)
    # A system line, five model lines, the result line.
    assert [item["id"] for item in live] == [f"1-{n}" for n in range(1, 8)]
    assert [item["kind"] for item in live] == ["log", *["text"] * 5, "result"]
    assert live[1]["line"] == "model line 0" and live[1]["ts"] is not None

    first = await api.request("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs", params={"after": "1-5"})
    assert [item["id"] for item in first.json()["items"]] == ["1-6", "1-7"]
    assert first.json()["source"] == "live"

    await redis.delete(keys.logs(run_id, "agent"))
    archived = await all_pages(api, run_id, limit=3)
    assert [(i["id"], i["kind"], i["line"]) for i in archived] == [(i["id"], i["kind"], i["line"]) for i in live]
    page = await api.request("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs", params={"after": "1-5", "limit": 1})
    assert page.json()["source"] == "archive"
    assert [item["id"] for item in page.json()["items"]] == ["1-6"]
    assert page.json()["next_cursor"] == "1-6"


async def test_logs_are_tenant_scoped_and_cursors_checked(api: Api) -> None:
    run_id = await finished_agent_run(api, lines=1)
    other = await api.new_key(tenant="other-tenant")
    response = await api.request("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs", key=other)
    assert response.status_code == 404
    response = await api.request("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs", params={"after": "nope"})
    assert response.status_code == 400
    assert "after: expected a line id like 1-42" in response.json()["error"]["message"]


async def test_an_agent_token_may_only_read_and_patch_its_own_run(api: Api, redis: aioredis.Redis, keys: Keys) -> None:
    run_id = await finished_agent_run(api, lines=0)
    other_run = await finished_agent_run(api, lines=0)
    credentials = AgentCredentials(redis, keys)
    token = await credentials.mint(tenant_id="default", run_id=run_id, node_id="agent", ttl_s=60)
    assert token.startswith("aob_agent_")
    assert await redis.get(keys.agent_token(token)) is None  # stored by hash only
    agent = {"Authorization": f"Bearer {token}"}

    assert (await api.request("GET", f"/api/v1/runs/{run_id}", key=agent)).status_code == 200
    patch = {"ops": [{"op": "add", "path": "/nodes/-", "value": {"id": "x", "type": "noop", "config": {}}}]}
    response = await api.request("POST", f"/api/v1/runs/{run_id}/patch", key=agent, json=patch)
    assert response.status_code == 409 and response.json()["error"]["code"] == "run_ended"  # allowed, but too late
    for method, path in (
        ("GET", "/api/v1/runs"),
        ("GET", f"/api/v1/runs/{other_run}"),
        ("POST", f"/api/v1/runs/{other_run}/patch"),
        ("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs"),
        ("GET", "/api/v1/workflows"),
    ):
        response = await api.request(method, path, key=agent, json=patch if method == "POST" else None)
        assert response.status_code == 403, (method, path, response.text)

    await credentials.revoke(token)
    assert (await api.request("GET", f"/api/v1/runs/{run_id}", key=agent)).status_code == 401


async def test_a_streamed_piece_of_a_line_is_marked_more_in_live_pages(
    api: Api, redis: aioredis.Redis, keys: Keys
) -> None:
    run_id = await finished_agent_run(api, lines=0)
    stream = keys.logs(run_id, "agent")
    await redis.xadd(stream, {"line": "Hello ", "kind": "text", "ts": 1, "attempt": 1, "more": "1"}, id="1-100")
    await redis.xadd(stream, {"line": "world", "kind": "text", "ts": 1, "attempt": 1}, id="1-101")
    response = await api.request("GET", f"/api/v1/runs/{run_id}/nodes/agent/logs", params={"after": "1-99"})
    assert [(item["line"], item.get("more")) for item in response.json()["items"]] == [
        ("Hello ", True),
        ("world", None),
    ]
