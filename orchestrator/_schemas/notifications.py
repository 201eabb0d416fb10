"""Notification subscriptions and their delivery logs as the API shows them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict

from common.notifications.models import Delivery, Subscription
from orchestrator._schemas.shape import Shape


class SubscriptionPage(BaseModel):
    """The tenant's subscriptions, oldest first, never their secrets (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[Subscription]
    next_cursor: str | None


class DeliveryPage(BaseModel):
    """A subscription's delivery attempts, newest first (``next_cursor`` is always null)."""

    model_config = ConfigDict(extra="forbid")

    items: list[Delivery]
    next_cursor: str | None


SubscriptionAnswer = Annotated[dict[str, Any], Shape(Subscription)]
SubscriptionPageAnswer = Annotated[dict[str, Any], Shape(SubscriptionPage)]
DeliveryPageAnswer = Annotated[dict[str, Any], Shape(DeliveryPage)]
