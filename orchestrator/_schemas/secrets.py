"""Secrets as the API shows them: names and times, never values."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from common.secrets import SecretInfo
from orchestrator._schemas.shape import Shape


class SecretPage(BaseModel):
    """The tenant's secrets by name (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[SecretInfo]
    next_cursor: str | None


class SecretsRotated(BaseModel):
    """How many secrets were encrypted again under the first key of AOB_SECRETS_KEYS."""

    model_config = ConfigDict(extra="forbid")

    rotated: int
    all_tenants: bool = Field(description="every tenant's secrets, not only the caller's")


SecretAnswer = Annotated[dict[str, Any], Shape(SecretInfo)]
SecretPageAnswer = Annotated[dict[str, Any], Shape(SecretPage)]
SecretsRotatedAnswer = Annotated[dict[str, Any], Shape(SecretsRotated)]
