"""The filters of ``GET /api/v1/runs``: query parameters in, SQL conditions over ``runs`` out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from common.runs.messages import RunStatus

# Run ids are uuid4 hex (API) or derived from a parent token (child runs): letters, digits, '-', '_' and ':'.
RUN_ID_PREFIX_PATTERN = r"^[A-Za-z0-9_:\-]{1,100}$"

# How a run was started: by a schedule, by a webhook trigger, by a parent run's node, or directly through the API.
RunSource = Literal["schedule", "trigger", "child", "api"]

_SOURCE_CONDITIONS: dict[str, str] = {
    "schedule": "schedule_id IS NOT NULL",
    "trigger": "trigger_id IS NOT NULL",
    "child": "parent_run_id IS NOT NULL",
    "api": "schedule_id IS NULL AND trigger_id IS NULL AND parent_run_id IS NULL",
}


class RunFilters(BaseModel):
    """Every filter is optional; given ones must all hold. Times are ISO 8601 with a zone (naive reads as UTC)."""

    workflow: str | None = Field(default=None, max_length=300, description="workflow id or name")
    status: list[RunStatus] = Field(default_factory=list, description="any of these statuses (repeat the parameter)")
    top_level: bool = Field(default=False, description="only runs that no other run started")
    id_prefix: str | None = Field(
        default=None, pattern=RUN_ID_PREFIX_PATTERN, description="runs whose id starts with this (search by id)"
    )
    started_by: str | None = Field(default=None, max_length=200, description="id of the API key that started the run")
    owner: str | None = Field(
        default=None, max_length=200, description="owner of the API key that started the run (any of their keys)"
    )
    schedule_id: str | None = Field(default=None, max_length=200, description="the schedule that started the run")
    trigger_id: str | None = Field(default=None, max_length=200, description="the webhook trigger that started it")
    source: RunSource | None = Field(default=None, description="how the run was started")
    created_after: datetime | None = Field(default=None, description="created at or after this time")
    created_before: datetime | None = Field(default=None, description="created before this time")

    @field_validator("created_after", "created_before")
    @classmethod
    def _utc_when_naive(cls, value: datetime | None) -> datetime | None:
        # A time without zone is UTC here, whatever the database session's time zone says.
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value

    def where(self, tenant_id: str) -> tuple[list[str], list[Any]]:
        """SQL conditions (joined with AND by the caller) and their positional arguments, tenant first."""
        conditions = ["tenant_id = $1"]
        args: list[Any] = [tenant_id]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if self.workflow is not None:
            ref = arg(self.workflow)
            conditions.append(f"(workflow_id = {ref} OR workflow_name = {ref})")
        if self.status:
            conditions.append(f"status = ANY({arg(list(self.status))}::text[])")
        if self.top_level:
            conditions.append("parent_run_id IS NULL")
        if self.id_prefix is not None:
            # The pattern admits no LIKE wildcard but '_': escape it so it matches only itself.
            conditions.append(f"id LIKE {arg(self.id_prefix.replace('_', chr(92) + '_') + '%')}")
        if self.started_by is not None:
            conditions.append(f"started_by = {arg(self.started_by)}")
        if self.owner is not None:
            conditions.append(
                f"started_by IN (SELECT id FROM api_keys WHERE tenant_id = $1 AND owner = {arg(self.owner)})"
            )
        if self.schedule_id is not None:
            conditions.append(f"schedule_id = {arg(self.schedule_id)}")
        if self.trigger_id is not None:
            conditions.append(f"trigger_id = {arg(self.trigger_id)}")
        if self.source is not None:
            conditions.append(_SOURCE_CONDITIONS[self.source])
        if self.created_after is not None:
            conditions.append(f"created_at >= {arg(self.created_after)}")
        if self.created_before is not None:
            conditions.append(f"created_at < {arg(self.created_before)}")
        return conditions, args
