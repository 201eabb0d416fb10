"""A run's events and a node's log lines, page by page."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._schemas.shape import Shape


class RunEvent(BaseModel):
    """One entry of a run's event log as stored; relayed as written, so readers ignore fields they do not know."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="the stream entry id: the cursor to resume after")
    v: int | None = Field(default=None, description="the event's schema version")
    type: str = Field(description="run_started, node_succeeded, approval_requested, ...")
    run_id: str
    node_id: str | None = None
    ts: int = Field(description="epoch milliseconds")
    data: dict[str, Any] | None = Field(default=None, description="free-form: what the event type carries")


class RunEventPage(BaseModel):
    """One page of a run's stored events, oldest first; ``next_cursor`` is null on the last page."""

    model_config = ConfigDict(extra="forbid")

    items: list[RunEvent]
    next_cursor: str | None


class LogLine(BaseModel):
    """One line a node's process wrote."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="<attempt>-<n>: the cursor to page on after")
    attempt: int
    kind: str | None = Field(description="how the agent protocol reads the line")
    line: str
    ts: int | None = Field(description="epoch milliseconds; null for archived lines")
    more: bool | None = Field(default=None, description="true on a piece of a streamed line the next item continues")


class LogPage(BaseModel):
    """One page of a node's log lines, oldest first; ``next_cursor`` is null on the last page."""

    model_config = ConfigDict(extra="forbid")

    items: list[LogLine]
    next_cursor: str | None
    source: Literal["live", "archive"] = Field(description="Redis while the stream lives, else the Postgres archive")
    truncated: bool = Field(description="lines were dropped past the per-node limit")


# The JSON page, or with format=sse the live stream (one ``id:`` and one JSON ``data:`` line per event).
EVENT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": RunEventPage,
        "description": "format=json: one page of stored events; format=sse: the live Server-Sent Events stream",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string", "description": "SSE frames whose data is one RunEvent as JSON"}
            }
        },
    }
}
LogPageAnswer = Annotated[dict[str, Any], Shape(LogPage)]
