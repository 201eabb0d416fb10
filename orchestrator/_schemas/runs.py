"""Runs as the API shows them (``orchestrator._run_view``): summaries in lists, the full resource with its nodes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from common.runs.ledger import NodeStatus
from common.runs.messages import RunStatus
from orchestrator._schemas.shape import Definition, Shape


class RunError(BaseModel):
    """Why a run failed, was cancelled or timed out."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="the failed node's error type, or cancelled, timed_out, engine_invariant, ...")
    message: str
    node_id: str | None = Field(default=None, description="the node whose failure failed the run")


class NodeError(BaseModel):
    """Why a node attempt failed, and whether another attempt may help."""

    model_config = ConfigDict(extra="allow")

    type: str
    message: str
    retryable: bool | None = None


class NodeState(BaseModel):
    """One node's latest attempt: status, timings, the worker that ran it and its output."""

    model_config = ConfigDict(extra="forbid")

    status: NodeStatus
    attempt: int
    error: NodeError | None
    queue_ms: float | None = Field(description="time from queued to started")
    exec_ms: float | None = Field(description="time from started to ended")
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    worker_id: str | None
    branch: str | None = Field(description="the label a branch node decided")
    output: Any = Field(description="the node's output, any JSON; null while it has none or when it is in CAS")
    output_ref: str | None = Field(
        default=None, description="cas://sha256:<hex> of an output stored by content (GET /api/v1/blobs/<hex>)"
    )


class RunSummary(BaseModel):
    """A run as its Postgres row holds it (what lists show)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    workflow_id: str | None
    workflow_name: str | None
    version: int | None
    status: RunStatus
    inputs: dict[str, Any] = Field(description="the run's inputs as given: a free-form object")
    outputs: dict[str, Any] | None = Field(description="the run's outputs once it succeeded: a free-form object")
    error: RunError | None
    ir_version: int = Field(description="bumped by every patch of the running run")
    parent_run_id: str | None = Field(description="the run whose workflow, loop or map node started this one")
    started_by: str | None = Field(description="the key, trigger or schedule that started it")
    schedule_id: str | None = Field(description="the schedule that started it")
    trigger_id: str | None = Field(description="the webhook trigger that started it")
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


class Run(RunSummary):
    """The full run: its hot state while it lives, and every node's latest attempt."""

    nodes: dict[str, NodeState] = Field(description="by node id")


class ChildRun(BaseModel):
    """A run started by a node of this one."""

    model_config = ConfigDict(extra="forbid")

    id: str
    parent_node_id: str | None
    workflow_id: str | None
    workflow_name: str | None
    version: int | None
    status: RunStatus
    created_at: datetime | None = Field(description="null for a child the recorder has not written yet")


class RunDetail(Run):
    """``GET /runs/{id}``: the run with the child runs its nodes started, oldest first."""

    children: list[ChildRun]


class ResumedRun(Run):
    """A run just resumed, with the nodes the resume reset."""

    resumed_nodes: list[str]


class RunPage(BaseModel):
    """One page of runs, newest first; ``next_cursor`` is null on the last page (and always for the runs of a
    schedule or a trigger)."""

    model_config = ConfigDict(extra="forbid")

    items: list[RunSummary]
    next_cursor: str | None


class RunDefinition(BaseModel):
    """A run's current definition, every patch applied; null for a child run of a loop or map body."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    ir_version: int
    definition: Definition | None


RunAnswer = Annotated[dict[str, Any], Shape(Run)]
RunDetailAnswer = Annotated[dict[str, Any], Shape(RunDetail)]
ResumedRunAnswer = Annotated[dict[str, Any], Shape(ResumedRun)]
RunPageAnswer = Annotated[dict[str, Any], Shape(RunPage)]
RunDefinitionAnswer = Annotated[dict[str, Any], Shape(RunDefinition)]
