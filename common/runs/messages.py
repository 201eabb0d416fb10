"""Typed payloads that cross Redis: tokens, completion signals, events. Each carries a schema version."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

MESSAGE_VERSION = 1

SignalStatus = Literal["succeeded", "failed", "skipped", "decided"]
RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"]
TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})


class Token(BaseModel):
    """One scheduled execution of one node."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = MESSAGE_VERSION
    token_id: str
    run_id: str
    node_id: str
    type: str
    attempt: int
    ir_version: int
    # An approval timeout comes back on the hitl stream as a token of the node it belongs to.
    purpose: Literal["run", "approval_timeout"] = "run"
    approval_id: str | None = None


class NodeError(BaseModel):
    """Why a node execution failed and whether trying again may help."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str = "error"
    message: str
    retryable: bool = True


class CompletionSignal(BaseModel):
    """A worker's report that one token finished; ``output_ref`` is inline JSON text or a ``cas://`` ref."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = MESSAGE_VERSION
    run_id: str
    node_id: str
    token_id: str
    attempt: int
    status: SignalStatus
    output_ref: str | None = None
    branch: str | None = None
    error: NodeError | None = None
    worker_id: str | None = None
    started_at_ms: float | None = None
    ended_at_ms: float | None = None


class Event(BaseModel):
    """One entry of a run's event log; ``id`` is the stream entry id (the resume cursor)."""

    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    type: str
    run_id: str
    node_id: str | None = None
    ts: int
    data: dict[str, Any] = {}
