"""Workflows and their immutable versions as the API shows them (``orchestrator._workflows``), and what the
definition helpers (``/validate``, ``/node-types``) answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._schemas.shape import Definition, Shape


class Workflow(BaseModel):
    """A workflow with its latest version's definition."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    description: str | None
    version: int = Field(description="the latest version")
    definition: Definition
    content_hash: str = Field(description="sha256 of the normalised definition")
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class WorkflowCreated(Workflow):
    """A workflow just created at version 1, with its compile warnings."""

    warnings: list[str]


class WorkflowSaved(WorkflowCreated):
    """A workflow after a new definition: ``created`` is false when it equalled the latest (no new version)."""

    created: bool


class WorkflowPage(BaseModel):
    """One page of workflows, newest first; ``next_cursor`` is null on the last page."""

    model_config = ConfigDict(extra="forbid")

    items: list[Workflow]
    next_cursor: str | None


class WorkflowVersionSummary(BaseModel):
    """One immutable version of a workflow, without its definition."""

    model_config = ConfigDict(extra="forbid")

    workflow_id: str
    version: int
    content_hash: str
    created_at: datetime
    created_by: str | None = Field(description="the key that saved it")


class WorkflowVersion(WorkflowVersionSummary):
    """One immutable version of a workflow."""

    definition: Definition


class WorkflowVersionPage(BaseModel):
    """Every version of a workflow, newest first (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[WorkflowVersionSummary]
    next_cursor: str | None


class ValidationResult(BaseModel):
    """Every error and warning of a definition; ``agent_count`` and ``entries`` only when it is valid."""

    model_config = ConfigDict(extra="forbid")

    valid: bool
    errors: list[str] = Field(description="'path: message' lines")
    warnings: list[str]
    agent_count: int | None = Field(default=None, description="agent nodes the workflow may start")
    entries: list[str] | None = Field(default=None, description="the nodes a run starts with")


class NodeType(BaseModel):
    """A node type and the JSON Schema of its config."""

    model_config = ConfigDict(extra="forbid")

    type: str
    config_schema: dict[str, Any] = Field(description="a JSON Schema (draft 2020-12) of the type's config")


class NodeTypeList(BaseModel):
    """Every node type."""

    model_config = ConfigDict(extra="forbid")

    items: list[NodeType]


WorkflowAnswer = Annotated[dict[str, Any], Shape(Workflow)]
WorkflowCreatedAnswer = Annotated[dict[str, Any], Shape(WorkflowCreated)]
WorkflowSavedAnswer = Annotated[dict[str, Any], Shape(WorkflowSaved)]
WorkflowPageAnswer = Annotated[dict[str, Any], Shape(WorkflowPage)]
WorkflowVersionAnswer = Annotated[dict[str, Any], Shape(WorkflowVersion)]
WorkflowVersionPageAnswer = Annotated[dict[str, Any], Shape(WorkflowVersionPage)]
ValidationAnswer = Annotated[dict[str, Any], Shape(ValidationResult)]
NodeTypesAnswer = Annotated[dict[str, Any], Shape(NodeTypeList)]
