"""The API processes' caches of keys and workflows stay coherent: what one process changes, every other sees in
time (a revoked key within a second, a new workflow version or an archive at the next submission)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from orchestrator import create_app
from orchestrator._state import AppState
from orchestrator._workflow_cache import LiveWorkflow
from orchestrator._workflows import live_workflow, workflows_changed
from tests.support.api import Api, chain_definition
from tests.support.deployment import Deployment
from tests.support.eventually import eventually


@contextlib.asynccontextmanager
async def _processes(
    deployment: Deployment, redis: aioredis.Redis, pool: asyncpg.Pool, count: int = 2
) -> AsyncIterator[list[tuple[Api, AppState]]]:
    """``count`` API apps on one Redis and Postgres, as ``AOB_API_WORKERS`` processes are (no engine: runs queue)."""
    async with contextlib.AsyncExitStack() as stack:
        processes = []
        for _ in range(count):
            app = create_app(deployment.api(), redis=redis, pool=pool)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aob")
            )
            processes.append((Api(client, None), app.state.aob))
        yield processes


async def _refused_everywhere_within(apis: list[Api], key: dict[str, str], limit_s: float) -> float:
    """Seconds until every API answers 401 to ``key``; fails after ``limit_s``."""
    started = time.monotonic()

    async def refused() -> bool:
        for api in apis:
            assert (await api.request("GET", "/api/v1/me", key=key)).status_code == 401
        return True

    await eventually(refused, limit_s, interval_s=0.01)
    return time.monotonic() - started


@pytest.mark.parametrize("how", ["api", "postgres"])
async def test_a_revoked_key_is_refused_within_a_second_by_every_process_that_cached_it(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, how: str
) -> None:
    async with _processes(deployment, redis, pg_pool) as processes:
        first, second = processes[0][0], processes[1][0]
        key = await first.new_key(role="editor")
        me = (await first.request("GET", "/api/v1/me", key=key)).json()
        for api, state in processes:
            assert (await api.request("GET", "/api/v1/me", key=key)).status_code == 200
            assert any(p.key_id == me["key_id"] for p in state.key_cache.entries())
        if how == "api":
            assert (await first.request("DELETE", f"/api/v1/api-keys/{me['key_id']}")).status_code == 204
        else:
            # Past the API: no revocation is published, so only the cache's age bounds it.
            await pg_pool.execute("UPDATE api_keys SET revoked_at = now() WHERE id = $1", me["key_id"])
        elapsed = await _refused_everywhere_within([first, second], key, 1.0)
        assert elapsed < 1.0


async def test_a_new_version_saved_through_one_process_is_what_another_starts(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with _processes(deployment, redis, pg_pool) as [(first, _), (second, second_state)]:
        created = await first.create_workflow("w", chain_definition(1))
        assert (await second.start_run("w"))["version"] == 1
        updated = await first.request("PUT", "/api/v1/workflows/w", json={"definition": chain_definition(2)})
        assert updated.status_code == 201
        # Even when the change did not reach it (a subscription down), the insert refuses the stale entry.
        tenant = "default"
        second_state.workflows.put(
            (tenant, "w"), LiveWorkflow(created["id"], "w", 1), second_state.workflows.generation
        )
        run = await second.start_run("w")
        assert run["version"] == 2 and set(run["nodes"]) == {"n0"}
        stored = await pg_pool.fetchrow("SELECT version, definition FROM runs WHERE id = $1", run["id"])
        assert stored["version"] == 2 and len(stored["definition"]["nodes"]) == 2
        # An explicit older version still starts.
        older = await second.request("POST", "/api/v1/runs", json={"workflow_id": "w", "version": 1})
        assert older.status_code == 201 and older.json()["version"] == 1


async def test_an_archived_workflow_starts_no_run_in_any_process(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with _processes(deployment, redis, pg_pool) as [(first, _), (second, second_state)]:
        created = await first.create_workflow("w", chain_definition(1))
        await second.start_run("w")
        await second.start_run(created["id"])
        assert (await first.request("DELETE", "/api/v1/workflows/w")).status_code == 204
        second_state.workflows.put(
            ("default", "w"), LiveWorkflow(created["id"], "w", 1), second_state.workflows.generation
        )
        for ref in ("w", created["id"]):
            refused = await second.request("POST", "/api/v1/runs", json={"workflow_id": ref})
            assert refused.status_code == 404, refused.text
        count = await pg_pool.fetchval("SELECT count(*) FROM runs WHERE workflow_id = $1", created["id"])
        assert count == 2


async def test_a_change_published_by_one_process_empties_the_others_cache(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with _processes(deployment, redis, pg_pool) as [(first, first_state), (_, second_state)]:
        await first.create_workflow("w", chain_definition(1))
        generation = second_state.workflows.generation

        async def subscribed() -> bool:
            # The subscription starts in the background: publish (for another tenant) until it has heard.
            await workflows_changed(first_state, "probe")
            return second_state.workflows.generation > generation

        async def cached() -> bool:
            # A late probe between the lookup and the put keeps it out: look up again.
            await live_workflow(second_state, "default", "w")
            return second_state.workflows.get(("default", "w")) is not None

        await eventually(subscribed, 5, interval_s=0.05)
        await eventually(cached, 5)
        updated = await first.request("PUT", "/api/v1/workflows/w", json={"definition": chain_definition(3)})
        assert updated.status_code == 201

        async def dropped() -> bool:
            return second_state.workflows.get(("default", "w")) is None

        await eventually(dropped, 1)


async def test_the_submission_answer_is_what_reading_the_run_gives(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with _processes(deployment, redis, pg_pool, count=1) as [(api, _)]:
        await api.create_workflow("w", {"nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}]})
        created = await api.request("POST", "/api/v1/runs", json={"workflow_id": "w", "inputs": {"x": [1, "é"]}})
        assert created.status_code == 201
        body = created.json()
        read = (await api.request("GET", f"/api/v1/runs/{body['id']}")).json()
        read.pop("children")
        # The start script stamps the Redis clock; the answer, the API's clock just before the call.
        stamps = [("started_at",), ("nodes", "a", "queued_at"), ("nodes", "b", "queued_at")]
        for path in stamps:
            built, stored = body, read
            for part in path[:-1]:
                built, stored = built[part], stored[part]
            gap_s = abs(_seconds(built[path[-1]]) - _seconds(stored[path[-1]]))
            assert gap_s < 0.5
            built[path[-1]] = stored[path[-1]]
        assert body == read


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


async def test_submissions_refused_before_admission_still_count_against_the_request_limits(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with _processes(deployment.replace(rate_key_per_min=4), redis, pg_pool, count=1) as [(api, _)]:
        key = await api.new_key(role="editor")
        answers = [
            await api.request("POST", "/api/v1/runs", key=key, json={"workflow_id": "nope"}),
            await api.request("POST", "/api/v1/runs", key=key, json={"workflow_id": 7}),
            await api.request("POST", "/api/v1/runs", key=key, content=b"{not json"),
            await api.request("POST", "/api/v1/runs", key=key, json={"workflow_id": "nope"}),
            await api.request("POST", "/api/v1/runs", key=key, json={"workflow_id": "nope"}),
        ]
        assert [a.status_code for a in answers] == [404, 422, 422, 404, 429]
        assert answers[0].headers["X-RateLimit-Remaining"] == "3"
        assert "per API key" in answers[-1].json()["error"]["message"]
