"""The OpenAPI document types every request body and success answer: no free-form object where the API has a
shape, and the free-form parts that are free by nature (run inputs, outputs, a node's output) say so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from common.settings import ApiSettings
from orchestrator import create_app
from orchestrator._schemas.document import install_openapi

REFS = "#/components/schemas/"
# Constraints that make a schema more than "any JSON" (an object type alone is not one).
_SHAPING = ("$ref", "properties", "patternProperties", "anyOf", "oneOf", "allOf", "enum", "const", "items", "if")
# Bodies that are any JSON by design, each with a description saying so.
FREE_BY_DESIGN = {
    ("GET", "/api/v1/blobs/{digest}", "200"),
    ("GET", "/api/v1/schema/workflow", "200"),
    ("POST", "/api/v1/hooks/{trigger_id}", "body"),
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = create_app(ApiSettings(redis_url="redis://127.0.0.1:1", database_url="postgresql://127.0.0.1:1/none"))
    return app.openapi()


def is_free(schema: dict[str, Any]) -> bool:
    """Whether ``schema`` lets any JSON value (or any JSON object) through."""
    if any(key in schema for key in _SHAPING):
        return False
    if isinstance(schema.get("additionalProperties"), dict) or schema.get("additionalProperties") is False:
        return False
    return schema.get("type") in (None, "object")


def undescribed_free_parts(
    schema: dict[str, Any], components: dict[str, Any], at: str, seen: set[str], described: bool = False
) -> Iterator[str]:
    """Paths of the free-form parts of ``schema`` (and of the components it refers to) without a description; a
    description covers the alternatives and items of the schema that carries it."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix(REFS)
        if name not in seen:
            seen.add(name)
            yield from undescribed_free_parts(components[name], components, name, seen)
        return
    described = described or "description" in schema
    if is_free(schema) and not described:
        yield at
    for key in ("anyOf", "oneOf", "allOf"):
        for i, part in enumerate(schema.get(key, [])):
            yield from undescribed_free_parts(part, components, f"{at}.{key}[{i}]", seen, described)
    for key in ("then", "else"):
        if key in schema:
            yield from undescribed_free_parts(schema[key], components, f"{at}.{key}", seen, described)
    for name, part in schema.get("properties", {}).items():
        yield from undescribed_free_parts(part, components, f"{at}.{name}", seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from undescribed_free_parts(schema["additionalProperties"], components, f"{at}.*", seen, described)
    if isinstance(schema.get("items"), dict):
        yield from undescribed_free_parts(schema["items"], components, f"{at}[]", seen, described)


def bodies(document: dict[str, Any]) -> Iterator[tuple[tuple[str, str, str], dict[str, Any]]]:
    """``((method, path, "body" or status), schema)`` of every JSON request body and success answer."""
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body is not None:
                yield (method.upper(), path, "body"), body["schema"]
            for status, answer in operation["responses"].items():
                json_answer = answer.get("content", {}).get("application/json")
                if status.startswith("2") and json_answer is not None:
                    yield (method.upper(), path, status), json_answer["schema"]


def resolved(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = components[schema["$ref"].removeprefix(REFS)]
    return schema


def test_no_body_or_success_answer_is_a_free_form_object(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    free = {where for where, schema in bodies(document) if is_free(resolved(schema, components))}
    assert free == FREE_BY_DESIGN
    for where in FREE_BY_DESIGN:
        schema = dict(bodies(document))[where]
        assert schema.get("description"), f"{where}: free by design, but not documented as such"


def test_every_free_form_part_says_what_it_holds(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    seen: set[str] = set()
    undescribed = [
        part
        for (method, path, kind), schema in bodies(document)
        for part in undescribed_free_parts(schema, components, f"{method} {path} {kind}", seen)
    ]
    assert undescribed == []


def test_the_hand_read_run_submission_is_documented(document: dict[str, Any]) -> None:
    operation = document["paths"]["/api/v1/runs"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {"$ref": REFS + "RunCreate"}
    for status in ("200", "201"):
        assert operation["responses"][status]["content"]["application/json"]["schema"] == {"$ref": REFS + "Run"}


def test_errors_are_documented_in_the_one_error_shape(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for methods in document["paths"].values():
        for operation in methods.values():
            for status in ("4XX", "5XX"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": REFS + "ErrorBody"}


class NodeSpec(BaseModel):
    """Named like a part of the workflow definition, with another shape."""

    elsewhere: int


def test_a_model_named_like_a_part_of_the_definition_is_refused() -> None:
    app = FastAPI()

    @app.post("/elsewhere")
    async def elsewhere(body: NodeSpec) -> None:
        return None

    install_openapi(app)
    with pytest.raises(RuntimeError, match="named twice, with different schemas: NodeSpec"):
        app.openapi()
