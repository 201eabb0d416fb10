"""Request bodies of the API: strict models, so an unknown field is refused by name."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from common.roles import KeyRole
from orchestrator._schemas.shape import DEFINITION_SCHEMA, Definition

WORKFLOW_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-/]{0,199}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PatchOp(BaseModel):
    """One RFC 6902 operation; ``jsonpatch`` checks the rest when applying."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    op: Literal["add", "remove", "replace", "move", "copy", "test"]
    path: str
    value: Any = Field(default=None, description="free-form: the JSON value add, replace and test use")
    from_: str | None = Field(default=None, alias="from")

    def as_json(self) -> dict[str, Any]:
        op: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op in ("add", "replace", "test"):
            op["value"] = self.value
        if self.from_ is not None:
            op["from"] = self.from_
        return op


class WorkflowCreate(Strict):
    name: str = Field(pattern=WORKFLOW_NAME_PATTERN, description="unique per tenant; may contain '/'")
    description: str | None = Field(default=None, max_length=2000)
    definition: Definition


class WorkflowUpdate(Strict):
    definition: Definition
    description: str | None = Field(default=None, max_length=2000)


class WorkflowPatch(Strict):
    ops: list[PatchOp] = Field(min_length=1, max_length=1000)
    description: str | None = Field(default=None, max_length=2000)


class DefinitionBody(Strict):
    # Any JSON is accepted and answered with its errors; the document says what a valid one is.
    definition: Annotated[Any, DEFINITION_SCHEMA]


class RunCreate(Strict):
    workflow_id: str = Field(min_length=1, max_length=300, description="workflow id or name")
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="free-form object, checked against the workflow's inputs schema"
    )


class RunPatch(Strict):
    ops: list[PatchOp] = Field(min_length=1, max_length=1000)
    reason: str | None = Field(default=None, max_length=2000)


class RunResume(Strict):
    from_node: str | None = Field(default=None, min_length=1, max_length=64)
    inputs: dict[str, Any] | None = Field(
        default=None,
        description="replace the run's inputs for every node that runs from the resume on (checked against the"
        " workflow's inputs schema); nodes kept keep the outputs they computed from the old inputs",
    )


class ApiKeyCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    role: KeyRole = "editor"
    owner: str | None = Field(
        default=None,
        pattern=r"^[^\x00-\x1f\x7f]{1,200}$",
        description="the person or service holding the key (several keys may share one); unset = the key's name",
    )
    tenant: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
