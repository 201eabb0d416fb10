"""The calling key (``/me``) and the API keys of a tenant as the API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from common.roles import KeyRole
from orchestrator._schemas.shape import Shape


class Me(BaseModel):
    """The calling key."""

    model_config = ConfigDict(extra="forbid")

    key_id: str
    name: str
    owner: str = Field(description="the person or service holding the key")
    tenant_id: str
    role: KeyRole
    bootstrap: bool = Field(description="the deployment's admin key (AOB_ADMIN_KEY)")


class ApiKey(BaseModel):
    """An API key (never the key itself)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    owner: str
    role: KeyRole
    tenant_id: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyCreated(BaseModel):
    """A key just created; ``key`` is shown this once only."""

    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    owner: str
    role: KeyRole
    tenant_id: str
    key: str = Field(description="the bearer token; stored hashed, never shown again")
    created_at: datetime


class ApiKeyPage(BaseModel):
    """The tenant's keys, newest first (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[ApiKey]
    next_cursor: str | None


MeAnswer = Annotated[dict[str, Any], Shape(Me)]
ApiKeyCreatedAnswer = Annotated[dict[str, Any], Shape(ApiKeyCreated)]
ApiKeyPageAnswer = Annotated[dict[str, Any], Shape(ApiKeyPage)]
