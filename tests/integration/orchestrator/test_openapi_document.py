"""The served OpenAPI document holds the workflow definition once: its ``WorkflowDefinition`` component, with the
components it refers to, is the schema ``GET /api/v1/schema/workflow`` serves, and every ``definition`` in a body
refers to it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment

REFS = "#/components/schemas/"
DEFINITION = "WorkflowDefinition"


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool, engine=False) as client:
        yield client


def references(value: Any) -> Iterator[str]:
    """The component names ``value`` refers to."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item.removeprefix(REFS)
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def as_own_defs(value: Any) -> Any:
    """``value`` with its component references written as the standalone schema writes them (``#/$defs/X``)."""
    if isinstance(value, dict):
        return {
            key: "#/$defs/" + item.removeprefix(REFS) if key == "$ref" else as_own_defs(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [as_own_defs(item) for item in value]
    return value


def reassembled(components: dict[str, Any]) -> dict[str, Any]:
    """The definition component as one standalone schema: the components it reaches become its ``$defs``."""
    reached: set[str] = set()
    pending = [DEFINITION]
    while pending:
        for name in references(components[pending.pop()]):
            if name not in reached:
                reached.add(name)
                pending.append(name)
    root = as_own_defs(components[DEFINITION])
    return root | {"$defs": {name: as_own_defs(components[name]) for name in sorted(reached)}}


async def test_the_definition_component_is_the_workflow_schema(api: Api) -> None:
    document = (await api.request("GET", "/openapi.json")).json()
    served = (await api.request("GET", "/api/v1/schema/workflow")).json()
    assert reassembled(document["components"]["schemas"]) == served


async def test_every_definition_in_a_body_refers_to_the_component(api: Api) -> None:
    components = (await api.request("GET", "/openapi.json")).json()["components"]["schemas"]
    own = {DEFINITION, *references(components[DEFINITION])}
    holders = {name: schema for name, schema in components.items() if "definition" in schema.get("properties", {})}
    assert {"WorkflowCreate", "WorkflowUpdate", "DefinitionBody", "Workflow", "WorkflowVersion"} <= set(holders)
    for name, schema in holders.items():
        if name in own:
            continue
        assert DEFINITION in set(references(schema["properties"]["definition"])), name
