"""Schedules as the API shows them (``orchestrator.routes.schedules``), with their next fire times."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from common.schedules.model import Catchup, Overlap
from orchestrator._schemas.shape import Shape


class ScheduleView(BaseModel):
    """A schedule and the next times it fires."""

    model_config = ConfigDict(extra="forbid")

    id: str
    workflow_id: str
    version: int | None = Field(description="pinned version; null: the latest at each fire")
    inputs: dict[str, Any] = Field(description="the inputs of every run it starts: a free-form object")
    cron: str | None
    timezone: str
    interval_s: int | None
    overlap: Overlap
    catchup: Catchup
    catchup_max: int
    paused: bool
    next_fire_at: datetime
    last_fire_at: datetime | None
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    next_fire_times: list[datetime] = Field(description="the next few fire times; empty while paused")


class SchedulePage(BaseModel):
    """The tenant's schedules (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[ScheduleView]
    next_cursor: str | None


ScheduleAnswer = Annotated[dict[str, Any], Shape(ScheduleView)]
SchedulePageAnswer = Annotated[dict[str, Any], Shape(SchedulePage)]
