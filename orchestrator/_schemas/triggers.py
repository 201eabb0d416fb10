"""Webhook triggers as the API shows them (``orchestrator._triggers.Trigger.shown``) and the hook's answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator._schemas.shape import Shape


class TriggerSecret(BaseModel):
    """An active secret of a trigger: its id and age, never its value."""

    model_config = ConfigDict(extra="forbid")

    id: str
    created_at: datetime


class TriggerView(BaseModel):
    """A webhook trigger; never its secrets."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    workflow_id: str
    version: int | None = Field(description="pinned version; null: the latest")
    auth: Literal["bearer", "hmac"]
    hook_path: str = Field(description="where senders POST: /api/v1/hooks/<id>")
    secrets: list[TriggerSecret] = Field(description="the active secrets, oldest first (at most two)")
    input_mapping: dict[str, Any] = Field(
        description="run input name -> template over 'body' and 'headers' (free-form); empty: the body is the inputs"
    )
    headers: list[str]
    rate_per_min: int
    paused: bool
    created_by: str | None
    created_at: datetime
    updated_at: datetime


class TriggerWithSecret(TriggerView):
    """A trigger with a new secret, shown this once only."""

    secret: str
    secret_id: str


class TriggerRetired(TriggerView):
    """A trigger after its older secrets were retired."""

    retired: int = Field(description="how many secrets were retired")


class TriggerPage(BaseModel):
    """The tenant's triggers, newest first (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[TriggerView]
    next_cursor: str | None


class HookAccepted(BaseModel):
    """A delivery accepted: the run it started (or, for a repeated ``Idempotency-Key``, started before)."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    status: str = Field(description="the run's status")
    replayed: bool = Field(description="the Idempotency-Key was seen before: no new run")


TriggerAnswer = Annotated[dict[str, Any], Shape(TriggerView)]
TriggerWithSecretAnswer = Annotated[dict[str, Any], Shape(TriggerWithSecret)]
TriggerRetiredAnswer = Annotated[dict[str, Any], Shape(TriggerRetired)]
TriggerPageAnswer = Annotated[dict[str, Any], Shape(TriggerPage)]
HookAcceptedAnswer = Annotated[dict[str, Any], Shape(HookAccepted)]
