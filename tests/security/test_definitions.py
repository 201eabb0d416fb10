"""Definitions have node, edge and size limits, checked wherever a definition is saved or patched into a run
(issue 14: definitions). Without them, one author's 4,000-node definition held the API's event loop for seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    # Request bodies may be larger than a definition, so the definition's own limit is what answers.
    roomy = deployment.replace(max_body_bytes=4 * 1_048_576)
    async with running_api(roomy, redis, pg_pool, engine=False) as client:
        yield client


def _many_edges(nodes: int, edges: int) -> dict[str, Any]:
    """``nodes`` noop nodes and ``edges`` distinct forward edges between them (a DAG)."""
    pairs = [(i, j) for i in range(nodes) for j in range(i + 1, nodes)][:edges]
    return {
        "nodes": [{"id": f"n{i}", "type": "noop"} for i in range(nodes)],
        "edges": [{"from": f"n{i}", "to": f"n{j}"} for i, j in pairs],
    }


def _big_config(config_chars: int, nodes: int = 1) -> dict[str, Any]:
    return {
        "nodes": [{"id": f"n{i}", "type": "transform", "config": {"output": "x" * config_chars}} for i in range(nodes)]
    }


@pytest.mark.parametrize(
    ("definition", "setting", "value"),
    [
        (chain_definition(1_001), "max_definition_nodes", 1_001),
        (_many_edges(110, 5_001), "max_definition_edges", 5_001),
        (_big_config(131_072), "max_node_config_bytes", 131_072 + len('{"output":""}')),
        (_big_config(120_000, nodes=10), "max_definition_bytes", None),
    ],
    ids=["nodes", "edges", "node-config-bytes", "definition-bytes"],
)
async def test_a_definition_over_a_limit_is_refused_naming_the_limit(
    api: Api, definition: dict[str, Any], setting: str, value: int | None
) -> None:
    response = await api.request("POST", "/api/v1/workflows", json={"name": "big", "definition": definition})
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert f"AOB_{setting.upper()}" in error["message"]
    [exceeded] = [d for d in error["details"] if d["setting"] == setting]
    assert value is None or exceeded["value"] == value
    assert exceeded["value"] > exceeded["limit"]


async def test_a_definition_at_the_node_limit_compiles(api: Api) -> None:
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "noop"}]
    nodes += [{"id": f"n{i}", "type": "transform", "config": {"output": "{{ nodes.n0 }}"}} for i in range(1, 1_000)]
    definition = {"nodes": nodes, "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(999)]}
    created = await api.create_workflow("at-limit", definition)
    assert created["warnings"] == []


async def test_a_json_patch_cannot_grow_a_workflow_past_a_limit(api: Api) -> None:
    await api.create_workflow("grow", chain_definition(1_000))
    op = {"op": "add", "path": "/nodes/-", "value": {"id": "extra", "type": "noop"}}
    response = await api.request("PATCH", "/api/v1/workflows/grow", json={"ops": [op]})
    assert response.status_code == 413, response.text[:300]
    assert "AOB_MAX_DEFINITION_NODES" in response.json()["error"]["message"]


async def test_a_runtime_patch_cannot_grow_a_run_past_a_limit(api: Api) -> None:
    await api.create_workflow("run-grow", chain_definition(1_000))
    run = await api.start_run("run-grow")
    op = {"op": "add", "path": "/nodes/-", "value": {"id": "extra", "type": "noop"}}
    response = await api.request("POST", f"/api/v1/runs/{run['id']}/patch", json={"ops": [op]})
    assert response.status_code == 413, response.text[:300]
    assert "AOB_MAX_DEFINITION_NODES" in response.json()["error"]["message"]


async def test_copies_in_a_json_patch_cannot_blow_a_definition_up(api: Api) -> None:
    await api.create_workflow("copies", _big_config(1_000))
    # Each copy of /metadata into itself doubles the definition: 12 make 4 MB (40 would make terabytes if
    # the ops were applied before anything measured them).
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": "/metadata", "value": {}},
        {"op": "copy", "from": "/nodes", "path": "/metadata/nodes"},
    ]
    ops += [{"op": "copy", "from": "/metadata", "path": f"/metadata/c{i}"} for i in range(12)]
    response = await api.request("PATCH", "/api/v1/workflows/copies", json={"ops": ops})
    assert response.status_code == 413, response.text[:300]
    assert "AOB_MAX_DEFINITION_BYTES" in response.json()["error"]["message"]
