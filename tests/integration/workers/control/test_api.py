"""The API side of child runs: self-inclusion refused on save, children listed, top-level filter, cascade."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from workers.control import control_handler


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    deployment = deployment.replace(control_block_ms=100)
    async with (
        control_handler(deployment.worker(), pg_pool, redis) as control,
        running_api(deployment, redis, pg_pool, handlers=[control]) as client,
    ):
        yield client


def calls(workflow: str, **config: Any) -> dict[str, Any]:
    return {"nodes": [{"id": "call", "type": "workflow", "config": {"workflow": workflow, **config}}]}


async def test_self_inclusion_is_refused_when_saved(api: Api) -> None:
    response = await api.request("POST", "/api/v1/workflows", json={"name": "selfish", "definition": calls("selfish")})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == ["cycle: selfish -> selfish"]
    await api.create_workflow("a", {"nodes": [{"id": "n", "type": "noop"}]})
    await api.create_workflow("b", calls("a"))
    response = await api.request("PUT", "/api/v1/workflows/a", json={"definition": calls("b")})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == ["cycle: a -> b -> a"]
    ops = [{"op": "replace", "path": "/nodes/0/config/workflow", "value": "b"}]
    response = await api.request("PATCH", "/api/v1/workflows/b", json={"ops": ops})
    assert response.status_code == 422
    assert response.json()["error"]["details"] == ["cycle: b -> b"]


async def test_run_lists_children_and_list_filters_top_level(api: Api) -> None:
    await api.create_workflow(
        "leaf",
        {"nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.v }}"}}],
         "outputs": {"v": "{{ nodes.t.output }}"}},
    )  # fmt: skip
    await api.create_workflow("top", calls("leaf", inputs={"v": "{{ inputs.v }}"}))
    run = await api.start_run("top", {"v": 7})
    ended = await api.wait_run(run["id"])
    assert ended["status"] == "succeeded"
    assert ended["nodes"]["call"]["output"] == {"v": 7}
    (child,) = ended["children"]
    assert child["parent_node_id"] == "call" and child["workflow_name"] == "leaf"
    assert child["status"] == "succeeded"

    async def recorded() -> dict[str, Any]:
        response = await api.request("GET", f"/api/v1/runs/{child['id']}")
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    assert (await eventually(recorded))["parent_run_id"] == run["id"]
    listed = (await api.request("GET", "/api/v1/runs")).json()["items"]
    assert {r["id"] for r in listed} == {run["id"], child["id"]}
    top = (await api.request("GET", "/api/v1/runs", params={"top_level": "true"})).json()["items"]
    assert [r["id"] for r in top] == [run["id"]]


async def test_cancel_through_the_api_cancels_descendants(api: Api) -> None:
    await api.create_workflow("sleeper", {"nodes": [{"id": "z", "type": "delay", "config": {"seconds": 60}}]})
    await api.create_workflow("middle", calls("sleeper"))
    await api.create_workflow("outer", calls("middle"))
    run = await api.start_run("outer")

    async def grandchild() -> str:
        body = (await api.request("GET", f"/api/v1/runs/{run['id']}")).json()
        assert body["children"], "no child yet"
        child = (await api.request("GET", f"/api/v1/runs/{body['children'][0]['id']}")).json()
        assert child.get("children"), "no grandchild yet"
        return str(child["children"][0]["id"])

    deepest = await eventually(grandchild)
    response = await api.request("POST", f"/api/v1/runs/{run['id']}/cancel")
    assert response.status_code == 200
    assert (await api.wait_run(deepest))["status"] == "cancelled"


async def test_a_child_runs_definition_is_drawn_from_its_ir(api: Api, pg_pool: asyncpg.Pool) -> None:
    leaf = {
        "inputs": {"type": "object", "properties": {"v": {"type": "integer"}}},
        "nodes": [
            {"id": "t", "type": "transform", "config": {"output": "{{ inputs.v }}"}},
            {"id": "u", "type": "noop"},
        ],
        "edges": [{"from": "t", "to": "u", "when": "output > 1"}],
    }
    await api.create_workflow("leaf", leaf)
    await api.create_workflow("top", calls("leaf", inputs={"v": "{{ inputs.v }}"}))
    run = await api.start_run("top", {"v": 7})
    (child,) = (await api.wait_run(run["id"]))["children"]
    expected = {
        "name": "leaf",
        "inputs": leaf["inputs"],
        "nodes": [
            {"id": "t", "type": "transform", "config": {"output": "{{ inputs.v }}"}},
            {"id": "u", "type": "noop", "config": {}},
        ],
        "edges": [{"from": "t", "to": "u", "when": "output > 1"}],
    }
    hot = await api.request("GET", f"/api/v1/runs/{child['id']}/definition")
    assert hot.status_code == 200 and hot.json()["definition"] == expected

    async def recorded() -> bool:
        return await pg_pool.fetchval("SELECT ir IS NOT NULL FROM runs WHERE id = $1", child["id"]) is True

    await eventually(recorded)
    assert api.engine is not None
    await api.engine.redis.delete(api.engine.keys.ir(child["id"]))
    stored = await api.request("GET", f"/api/v1/runs/{child['id']}/definition")
    assert stored.json()["definition"] == expected
