"""The API's OpenAPI document: what FastAPI derives from the routes, plus the workflow definition's JSON Schema
(``GET /api/v1/schema/workflow``) held once in the components, its ``$defs`` beside it, and the bodies of routes
that read their request themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from common.workflow.compiler import json_schema
from orchestrator._schemas.shape import DEFINITION_COMPONENT

_OWN_REFS = "#/$defs/"
COMPONENT_REFS = "#/components/schemas/"


def _moved(value: Any) -> Any:
    """``value`` with every ``#/$defs/X`` reference pointing at the component ``X`` instead."""
    if isinstance(value, list):
        return [_moved(item) for item in value]
    if not isinstance(value, dict):
        return value
    moved = {key: _moved(item) for key, item in value.items()}
    ref = moved.get("$ref")
    if isinstance(ref, str) and ref.startswith(_OWN_REFS):
        moved["$ref"] = COMPONENT_REFS + ref.removeprefix(_OWN_REFS)
    return moved


def definition_components() -> dict[str, Any]:
    """The workflow definition's schema as components: the definition itself and each of its ``$defs``."""
    schema = json_schema()
    defs = schema.pop("$defs")
    return {DEFINITION_COMPONENT: _moved(schema)} | {name: _moved(part) for name, part in defs.items()}


def model_components(models: Sequence[type[BaseModel]]) -> dict[str, Any]:
    """``models`` (request bodies) as components, with the models they use."""
    components: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=COMPONENT_REFS + "{model}")
        components |= schema.pop("$defs", {}) | {model.__name__: schema}
    return components


def _errors_in_json(document: dict[str, Any]) -> None:
    """Document error answers as JSON on routes whose own answer is not (FastAPI files them under the route's media
    type): every error is the JSON error body."""
    for methods in document["paths"].values():
        for operation in methods.values():
            for status, answer in operation["responses"].items():
                content = answer.get("content", {})
                if status[0] in "45" and content and "application/json" not in content:
                    answer["content"] = {"application/json": content.popitem()[1]}


def install_openapi(app: FastAPI, bodies: Sequence[type[BaseModel]] = ()) -> None:
    """Make ``app`` serve its document with the definition components and ``bodies`` (request bodies its routes
    read themselves, referred to as ``COMPONENT_REFS + name``) added; built once, on first use."""
    derived = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = derived()
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        added = definition_components() | model_components(bodies)
        clashes = sorted(name for name, schema in added.items() if schemas.get(name, schema) != schema)
        if clashes:
            # A model of the API named like a part of the definition would silently replace it.
            app.openapi_schema = None
            raise RuntimeError(f"OpenAPI components named twice, with different schemas: {', '.join(clashes)}")
        schemas.update(added)
        _errors_in_json(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
