"""Workflows API: versions, names with '/', JSON Patch versions, archive, validation, tenant isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, chain_definition, running_api
from tests.support.deployment import Deployment


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool, engine=False) as client:
        yield client


async def test_create_get_by_id_and_encoded_name(api: Api) -> None:
    created = await api.create_workflow("team/etl-v2", chain_definition(2))
    assert created["version"] == 1 and created["name"] == "team/etl-v2"
    by_id = await api.request("GET", f"/api/v1/workflows/{created['id']}")
    by_name = await api.request("GET", f"/api/v1/workflows/{quote('team/etl-v2', safe='')}")
    assert by_id.status_code == by_name.status_code == 200
    assert by_id.json()["id"] == by_name.json()["id"] == created["id"]
    assert by_name.json()["definition"]["nodes"][0]["id"] == "n0"


async def test_duplicate_name_is_409(api: Api) -> None:
    await api.create_workflow("dup", chain_definition(1))
    response = await api.request("POST", "/api/v1/workflows", json={"name": "dup", "definition": chain_definition(1)})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "name_taken"


async def test_put_creates_version_only_when_content_changes(api: Api) -> None:
    await api.create_workflow("w", chain_definition(1))
    same = await api.request("PUT", "/api/v1/workflows/w", json={"definition": chain_definition(1)})
    assert same.status_code == 200 and same.json()["version"] == 1 and same.json()["created"] is False
    changed = await api.request("PUT", "/api/v1/workflows/w", json={"definition": chain_definition(3)})
    assert changed.status_code == 201 and changed.json()["version"] == 2
    versions = (await api.request("GET", "/api/v1/workflows/w/versions")).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    v1 = await api.request("GET", "/api/v1/workflows/w/versions/1")
    assert v1.status_code == 200 and len(v1.json()["definition"]["nodes"]) == 1
    assert (await api.request("GET", "/api/v1/workflows/w/versions/9")).status_code == 404


async def test_patch_workflow_with_json_patch_ops(api: Api) -> None:
    await api.create_workflow("p/q", chain_definition(1))
    ops = [
        {"op": "add", "path": "/nodes/-", "value": {"id": "extra", "type": "noop"}},
        {"op": "add", "path": "/edges/-", "value": {"from": "n0", "to": "extra"}},
    ]
    response = await api.request("PATCH", f"/api/v1/workflows/{quote('p/q', safe='')}", json={"ops": ops})
    assert response.status_code == 201, response.text
    assert response.json()["version"] == 2
    assert [n["id"] for n in response.json()["definition"]["nodes"]] == ["n0", "extra"]


async def test_patch_workflow_refuses_bad_ops_and_invalid_results(api: Api) -> None:
    await api.create_workflow("w", chain_definition(2))
    bad_path = await api.request("PATCH", "/api/v1/workflows/w", json={"ops": [{"op": "remove", "path": "/nope/3"}]})
    assert bad_path.status_code == 422
    assert "ops[0]" in bad_path.json()["error"]["message"]
    cycle = [{"op": "add", "path": "/edges/-", "value": {"from": "n1", "to": "n0"}}]
    response = await api.request("PATCH", "/api/v1/workflows/w", json={"ops": cycle})
    assert response.status_code == 422
    assert "cycle" in response.json()["error"]["message"]


async def test_invalid_definition_lists_every_error(api: Api) -> None:
    edges = [{"from": "a", "to": "zz"}, {"from": "q", "to": "a"}]
    definition = {"nodes": [{"id": "a", "type": "noop"}], "edges": edges}
    response = await api.request("POST", "/api/v1/workflows", json={"name": "bad", "definition": definition})
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert any("zz" in line for line in details) and any("'q'" in line for line in details)


async def test_list_filters_and_paginates(api: Api) -> None:
    for name in ("a/1", "a/2", "a/3", "b/1"):
        await api.create_workflow(name, chain_definition(1))
    page = (await api.request("GET", "/api/v1/workflows", params={"limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (await api.request("GET", "/api/v1/workflows", params={"limit": 2, "cursor": page["next_cursor"]})).json()
    names = [w["name"] for w in page["items"] + rest["items"]]
    assert sorted(names) == ["a/1", "a/2", "a/3", "b/1"] and rest["next_cursor"] is None
    filtered = (await api.request("GET", "/api/v1/workflows", params={"name": "a/*"})).json()["items"]
    assert sorted(w["name"] for w in filtered) == ["a/1", "a/2", "a/3"]
    exact = (await api.request("GET", "/api/v1/workflows", params={"name": "b/1"})).json()["items"]
    assert [w["name"] for w in exact] == ["b/1"]
    bad = await api.request("GET", "/api/v1/workflows", params={"cursor": "!!!"})
    assert bad.status_code == 422


async def test_archive_hides_workflow(api: Api) -> None:
    await api.create_workflow("gone", chain_definition(1))
    assert (await api.request("DELETE", "/api/v1/workflows/gone")).status_code == 204
    assert (await api.request("GET", "/api/v1/workflows/gone")).status_code == 404
    assert (await api.request("DELETE", "/api/v1/workflows/gone")).status_code == 404
    assert (await api.request("GET", "/api/v1/workflows")).json()["items"] == []


async def test_other_tenant_sees_nothing(api: Api) -> None:
    created = await api.create_workflow("secret", chain_definition(1))
    other = await api.new_key(tenant="other")
    for path in (f"/api/v1/workflows/{created['id']}", "/api/v1/workflows/secret", "/api/v1/workflows/secret/versions"):
        assert (await api.request("GET", path, key=other)).status_code == 404
    assert (await api.request("GET", "/api/v1/workflows", key=other)).json()["items"] == []
    put = await api.request("PUT", "/api/v1/workflows/secret", key=other, json={"definition": chain_definition(2)})
    assert put.status_code == 404
    assert (await api.request("DELETE", "/api/v1/workflows/secret", key=other)).status_code == 404
    # The same name is free in the other tenant.
    await api.create_workflow("secret", chain_definition(1), key=other)


async def test_validate_node_types_and_schema(api: Api) -> None:
    ok = (await api.request("POST", "/api/v1/validate", json={"definition": chain_definition(2)})).json()
    assert ok["valid"] is True and ok["errors"] == []
    bad = await api.request("POST", "/api/v1/validate", json={"definition": {"nodes": []}})
    assert bad.status_code == 200 and bad.json()["valid"] is False and bad.json()["errors"]
    unknown = {"nodes": [{"id": "x", "type": "future-thing"}]}
    warned = (await api.request("POST", "/api/v1/validate", json={"definition": unknown})).json()
    assert warned["valid"] is True and "unknown type" in warned["warnings"][0]
    types = (await api.request("GET", "/api/v1/node-types")).json()["items"]
    assert {"http", "agent", "noop"} <= {t["type"] for t in types}
    assert all(isinstance(t["config_schema"], dict) for t in types)
    schema = (await api.request("GET", "/api/v1/schema/workflow")).json()
    assert "nodes" in schema["properties"]
