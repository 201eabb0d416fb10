"""Resuming a run with edited inputs: checked against the schema, used by every node that runs after the resume."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually

DIVIDE: dict[str, Any] = {
    "inputs": {
        "type": "object",
        "properties": {
            "total": {"type": "integer"},
            "parts": {"type": "integer"},
            "notify": {"type": "boolean"},
        },
        "required": ["total", "parts"],
    },
    "nodes": [
        {"id": "start", "type": "noop"},
        {"id": "share", "type": "transform", "config": {"output": "{{ inputs.total // inputs.parts }}"}},
        {"id": "notify", "type": "noop"},
    ],
    "edges": [{"from": "start", "to": "share"}, {"from": "share", "to": "notify", "when": "inputs.notify"}],
}


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool) as client:
        yield client


async def _failed_division(api: Api) -> str:
    await api.create_workflow("divide", DIVIDE)
    run = await api.start_run("divide", {"total": 10, "parts": 0, "notify": False})
    failed = await api.wait_run(run["id"])
    assert failed["status"] == "failed" and failed["nodes"]["share"]["status"] == "failed", failed
    return str(run["id"])


async def test_resume_with_edited_inputs_reruns_the_failed_node_with_them(api: Api, pg_pool: asyncpg.Pool) -> None:
    run_id = await _failed_division(api)
    inputs = {"total": 10, "parts": 2, "notify": True}
    resumed = await api.request("POST", f"/api/v1/runs/{run_id}/resume", json={"inputs": inputs})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["resumed_nodes"] == ["share", "notify"]
    done = await api.wait_run(run_id)
    assert done["status"] == "succeeded", done
    assert done["nodes"]["share"]["output"] == 5 and done["nodes"]["share"]["attempt"] == 2
    # The edge condition reads the new inputs: a coordinator that kept the failed epoch's inputs skipped "notify".
    assert done["nodes"]["notify"]["status"] == "succeeded", done["nodes"]["notify"]
    assert done["nodes"]["start"]["attempt"] == 1
    assert api.engine is not None
    resumed_events = [e for e in await api.engine.events(run_id) if e["type"] == "run_resumed"]
    assert resumed_events[0]["data"]["inputs_changed"] is True

    async def recorded() -> bool:
        row = await pg_pool.fetchrow("SELECT inputs, status FROM runs WHERE id = $1", run_id)
        return row is not None and row["status"] == "succeeded" and row["inputs"] == inputs

    await eventually(recorded)
    assert (await api.request("GET", f"/api/v1/runs/{run_id}")).json()["inputs"] == inputs


async def test_resume_without_inputs_keeps_them(api: Api, pg_pool: asyncpg.Pool) -> None:
    run_id = await _failed_division(api)
    resumed = await api.request("POST", f"/api/v1/runs/{run_id}/resume", json={"from_node": "start"})
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["resumed_nodes"] == ["start", "share", "notify"]
    assert (await api.wait_run(run_id))["status"] == "failed"
    assert api.engine is not None
    resumed_events = [e for e in await api.engine.events(run_id) if e["type"] == "run_resumed"]
    assert "inputs_changed" not in resumed_events[0]["data"]
    row = await pg_pool.fetchrow("SELECT inputs FROM runs WHERE id = $1", run_id)
    assert row["inputs"] == {"total": 10, "parts": 0, "notify": False}


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"inputs": {"total": 10, "parts": "two"}}, "inputs.parts"),
        ({"inputs": {"parts": 2}}, "inputs"),
        ({"inputs": [1, 2]}, "inputs"),
        ({"inputs": {"total": 1, "parts": 1}, "extra": 1}, "extra"),
    ],
)
async def test_resume_with_bad_inputs_is_422_and_leaves_the_run_ended(
    api: Api, body: dict[str, Any], where: str
) -> None:
    run_id = await _failed_division(api)
    response = await api.request("POST", f"/api/v1/runs/{run_id}/resume", json=body)
    assert response.status_code == 422, response.text
    assert where in response.text
    assert (await api.request("GET", f"/api/v1/runs/{run_id}")).json()["status"] == "failed"
