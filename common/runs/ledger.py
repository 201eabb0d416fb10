"""Entries of the ledger stream ``wf.ledger``: written by the run-state scripts, recorded in Postgres by the recorder.

A run entry carries the run's whole state and a step entry one node attempt's whole state, each numbered by
``seq`` (per run, in the order the scripts wrote them), so the latest one wins whichever order they are recorded in.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, field_validator

from common.runs.messages import RunStatus, WireModel

NodeStatus = Literal["pending", "queued", "running", "waiting", "succeeded", "failed", "skipped", "cancelled"]


class RunEntry(WireModel):
    """A run's state after a change (timestamps in epoch ms)."""

    kind: Literal["run"] = "run"
    # 0 for entries written before entries were numbered.
    seq: int = 0
    run_id: str
    status: RunStatus
    tenant: str | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None
    version: int | None = None
    ir_version: int | None = None
    started_by: str | None = None
    parent_run_id: str | None = None
    parent_node_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    inputs: dict[str, Any] | None = None
    outputs: Any = None
    error: dict[str, Any] | None = None
    # What rebuilding the run from Postgres needs (common/runs/rebuild.py): the epoch its token ids carry, its
    # deadline, the nodes its latest resume reset, and for a child run (no definition in Postgres) its IR as JSON.
    epoch: int | None = None
    deadline_at: float | None = None
    reset_nodes: list[str] | None = None
    ir: str | None = None
    # The run's trace context, on its start entry only (kept in runs.traceparent so a rebuilt run keeps its trace).
    traceparent: str | None = None

    @field_validator("reset_nodes", mode="before")
    @classmethod
    def _empty_list(cls, value: Any) -> Any:
        # Lua's cjson writes an empty list as {}.
        return [] if value == {} else value


class StepEntry(WireModel):
    """One node attempt's state after a change (timestamps and durations in ms)."""

    kind: Literal["step"] = "step"
    seq: int = 0
    run_id: str
    node_id: str
    attempt: int = 0
    status: NodeStatus
    queued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    queue_ms: float | None = None
    exec_ms: float | None = None
    worker_id: str | None = None
    output_ref: str | None = None
    # Recorded as the script wrote it: the recorder copies, it does not reinterpret.
    error: dict[str, Any] | None = None
    # The run's epoch when the step changed, and the branch a succeeded step took (for rebuilding the run).
    epoch: int | None = None
    branch: str | None = None


class BlobEntry(WireModel):
    """A blob stored in Redis that Postgres must hold too (``Cas.put``)."""

    kind: Literal["blob"] = "blob"
    seq: int = 0
    digest: str


LedgerEntry = Annotated[RunEntry | StepEntry | BlobEntry, Field(discriminator="kind")]
_ENTRY: TypeAdapter[RunEntry | StepEntry | BlobEntry] = TypeAdapter(LedgerEntry)


def parse_ledger_entry(text: str) -> RunEntry | StepEntry | BlobEntry:
    """The entry stored as ``text``; raises ``ValidationError`` when malformed or of a newer ``v``."""
    return _ENTRY.validate_json(text)
