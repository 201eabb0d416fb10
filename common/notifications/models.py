"""The shapes of notification subscriptions and delivery-log entries, as the API takes and returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EventType = Literal["approval_requested", "approval_decided", "run_failed", "run_timed_out", "run_succeeded"]
EVENT_TYPES: frozenset[str] = frozenset(EventType.__args__)  # type: ignore[attr-defined]
# The type of a delivery someone asked for by hand ("send test"); no subscription can subscribe to it.
TEST_EVENT = "test"
_EMAIL = r"^[^@\s]+@[^@\s]+$"


class SubscriptionCreate(BaseModel):
    """A new subscription: ``url`` for a webhook, ``address`` for e-mail; no ``workflow_id`` means every workflow."""

    model_config = ConfigDict(extra="forbid")

    events: list[EventType] = Field(min_length=1)
    channel: Literal["webhook", "email"]
    url: str | None = Field(default=None, max_length=2000)
    address: str | None = Field(default=None, pattern=_EMAIL, max_length=320)
    format: Literal["json", "slack"] = "json"
    workflow_id: str | None = Field(default=None, max_length=200)
    paused: bool = False

    @model_validator(mode="after")
    def _target_matches_channel(self) -> SubscriptionCreate:
        if self.channel == "webhook" and (self.url is None or self.address is not None):
            raise ValueError("channel 'webhook': expected `url` and no `address`")
        if self.channel == "email" and (self.address is None or self.url is not None):
            raise ValueError("channel 'email': expected `address` and no `url`")
        return self

    @property
    def target(self) -> str:
        return self.url if self.channel == "webhook" else self.address  # type: ignore[return-value]


class SubscriptionPatch(BaseModel):
    """What a subscription may change after creation."""

    model_config = ConfigDict(extra="forbid")

    paused: bool


class Subscription(BaseModel):
    """A stored subscription; ``secret`` (the webhook signing secret) is present only in the answer to its creation."""

    id: str
    tenant_id: str
    workflow_id: str | None
    events: list[str]
    channel: str
    target: str
    format: str
    paused: bool
    created_by: str | None
    created_at: datetime
    secret: str | None = None


class Delivery(BaseModel):
    """One delivery attempt of one event to one subscription."""

    id: int
    subscription_id: str
    event_id: str
    event_type: str
    run_id: str | None
    attempt: int
    status: Literal["delivered", "failed", "retrying"]
    response_code: int | None
    error: str | None
    created_at: datetime


class TestQueued(BaseModel):
    """The answer to a "send test": the test event's id, as its delivery-log entries will show it."""

    subscription_id: str
    event_id: str
    event_type: Literal["test"] = "test"
