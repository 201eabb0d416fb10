"""Answers documented by a model without being validated by it.

Most routes build their answer as a dict, and those bytes are what the UI and the CLI read. Such a route returns
``Annotated[dict[str, Any], Shape(Model)]``: FastAPI handles the answer as the dict it is (no validation, no copy
into a model, no change to a byte) and the OpenAPI document shows ``Model``. The tests check every answer they get
against the document, so a model cannot drift from what its route returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, GetJsonSchemaHandler, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

# The workflow definition's JSON Schema is held once in the document's components, under this name (see document).
DEFINITION_COMPONENT = "WorkflowDefinition"
_DEFINITION_REF = {"$ref": f"#/components/schemas/{DEFINITION_COMPONENT}"}


@dataclass(frozen=True)
class Shape:
    """Annotates a ``dict[str, Any]`` answer with the model that documents it."""

    model: type[BaseModel]

    def __get_pydantic_json_schema__(self, _: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = self.model.__pydantic_core_schema__
        ref = schema.get("ref")
        if ref is None:
            return handler(schema)
        # Through a reference, so that the model is one component the document points at rather than a copy inlined.
        return handler(core_schema.definitions_schema(core_schema.definition_reference_schema(ref), [schema]))


# A workflow definition in a body: validated (and refused with its own error paths) by the compiler, documented as
# the JSON Schema of ``GET /api/v1/schema/workflow``. (``allOf``: pydantic only writes a bare ``$ref`` to its own
# models.)
DEFINITION_SCHEMA = WithJsonSchema({"allOf": [_DEFINITION_REF], "description": "a workflow definition"})
Definition = Annotated[dict[str, Any], DEFINITION_SCHEMA]
