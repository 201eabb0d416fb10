"""Runtime patches of a running run as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._schemas.shape import Shape


class AddedEdge(BaseModel):
    """An edge a patch added."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    to: str


class PatchResult(BaseModel):
    """A patch applied: the IR version it moved the run from and to, and what it added."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    from_version: int
    ir_version: int
    added_nodes: list[str]
    added_edges: list[AddedEdge]
    warnings: list[str]


class PatchRecord(BaseModel):
    """One applied patch of a run."""

    model_config = ConfigDict(extra="forbid")

    id: str
    from_version: int
    to_version: int
    ops: list[dict[str, Any]] = Field(description="the RFC 6902 operations as applied")
    author: str | None = Field(description="key:<id> of the caller that patched")
    reason: str | None
    created_at: datetime


class PatchPage(BaseModel):
    """Every patch applied to a run, oldest first (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[PatchRecord]
    next_cursor: str | None


PatchResultAnswer = Annotated[dict[str, Any], Shape(PatchResult)]
PatchPageAnswer = Annotated[dict[str, Any], Shape(PatchPage)]
