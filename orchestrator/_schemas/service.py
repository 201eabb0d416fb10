"""What the service itself answers: liveness, readiness, the UI's configuration, and the free-form JSON documents
(a JSON Schema, a CAS output) that have no model of their own."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from orchestrator._schemas.shape import DEFINITION_COMPONENT, Shape


class Health(BaseModel):
    """The process answers."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]


class Ready(BaseModel):
    """Redis and Postgres answer."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["ready"]


class UiConfig(BaseModel):
    """What a browser needs before logging in."""

    model_config = ConfigDict(extra="forbid")

    fanout_url: str | None = Field(description="the fanout's WebSocket base URL; null: the page's own host")
    fanout_port: int


HealthAnswer = Annotated[dict[str, Any], Shape(Health)]
ReadyAnswer = Annotated[dict[str, Any], Shape(Ready)]
UiConfigAnswer = Annotated[dict[str, Any], Shape(UiConfig)]
WorkflowSchemaAnswer = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "description": "the JSON Schema (draft 2020-12) of a workflow definition: the same schema as the"
            f" {DEFINITION_COMPONENT} component of this document, its $defs kept inside",
        }
    ),
]
# A CAS output is whatever JSON its node produced.
BLOB_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the output as its node produced it",
        "content": {"application/json": {"schema": {"description": "free-form: any JSON value"}}},
    }
}
