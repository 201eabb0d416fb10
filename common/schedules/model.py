"""What a schedule is (validated with pydantic) and when it fires: cron expressions through ``croniter`` in the
schedule's time zone, intervals aligned to the Unix epoch so their fire times do not depend on when they were made."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, croniter
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A cron walk (catch-up, the next fire times shown) never takes more steps than this.
MAX_CRON_STEPS = 1000
MAX_INTERVAL_S = 366 * 24 * 3600

Overlap = Literal["skip", "allow"]
Catchup = Literal["none", "last", "all"]
_INPUTS = "the inputs of every run it starts: a free-form object, checked against the workflow's inputs schema"


class ScheduleTiming(BaseModel):
    """When a schedule fires: ``cron`` in ``timezone``, or every ``interval_s`` seconds (exactly one of them)."""

    model_config = ConfigDict(extra="forbid")

    cron: str | None = Field(default=None, max_length=200, description="cron expression, e.g. '*/5 * * * *'")
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone the cron expression reads in")
    interval_s: int | None = Field(
        default=None, ge=1, le=MAX_INTERVAL_S, description="seconds between fire times, aligned to the Unix epoch"
    )

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is None:
            return value
        # No year field: a 5- or 6-field expression that fires once fires again every year, so a schedule that was
        # valid never runs out of fire times.
        if len(value.split()) > 6:
            raise ValueError(f"expected 5 fields (or 6, the last for seconds), got {value!r}")
        try:
            # Walking both ways refuses expressions that never match, such as '0 0 31 2 *'.
            croniter(value).get_next(datetime)
            croniter(value).get_prev(datetime)
        except (CroniterBadCronError, ValueError, KeyError) as exc:
            raise ValueError(f"expected a cron expression such as '0 * * * *', got {value!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"expected an IANA time zone such as 'Europe/Paris', got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleTiming:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("expected exactly one of 'cron' and 'interval_s'")
        return self

    def next_after(self, moment: datetime) -> datetime:
        """The first fire time strictly after ``moment`` (UTC)."""
        if self.interval_s is not None:
            step = self.interval_s
            return _from_epoch((math.floor(moment.timestamp() / step) + 1) * step)
        local = moment.astimezone(ZoneInfo(self.timezone))
        fire: datetime = croniter(self._cron(), local).get_next(datetime)
        return fire.astimezone(UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last fire time at or before ``moment`` (UTC)."""
        if self.interval_s is not None:
            step = self.interval_s
            return _from_epoch(math.floor(moment.timestamp() / step) * step)
        local = (moment + timedelta(microseconds=1)).astimezone(ZoneInfo(self.timezone))
        fire: datetime = croniter(self._cron(), local).get_prev(datetime)
        return fire.astimezone(UTC)

    def _cron(self) -> str:
        # The validator leaves a cron expression whenever there is no interval.
        return self.cron or ""

    def upcoming(self, after: datetime, count: int) -> list[datetime]:
        """The next ``count`` fire times after ``after``."""
        fires: list[datetime] = []
        moment = after
        for _ in range(count):
            moment = self.next_after(moment)
            fires.append(moment)
        return fires

    def between(self, start: datetime, end: datetime, *, latest: int) -> list[datetime]:
        """At most the ``latest`` fire times in ``[start, end]``, oldest first."""
        fires: list[datetime] = []
        moment = end
        for _ in range(min(latest, MAX_CRON_STEPS)):
            fire = self.latest_at_or_before(moment)
            if fire < start:
                break
            fires.append(fire)
            moment = fire - timedelta(microseconds=1)
        return fires[::-1]


class ScheduleSpec(ScheduleTiming):
    """A schedule as created: which workflow, with what inputs, when, and what happens on overlap and after an
    outage."""

    workflow: str = Field(min_length=1, max_length=200, description="the workflow's name or id")
    version: int | None = Field(default=None, ge=1, description="pinned version; absent: the latest at each fire")
    inputs: dict[str, Any] = Field(default_factory=dict, description=_INPUTS)
    overlap: Overlap = Field(default="skip", description="skip: no fire while a run of this schedule is live")
    catchup: Catchup = Field(default="none", description="what fires for fire times missed during an outage")
    catchup_max: int = Field(default=10, ge=1, le=1000, description="with catchup 'all': at most this many")
    paused: bool = False


class SchedulePatch(BaseModel):
    """The body of ``PATCH /schedules/{id}``: the fields to change."""

    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1)
    inputs: dict[str, Any] | None = Field(default=None, description=_INPUTS)
    cron: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    interval_s: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_S)
    overlap: Overlap | None = None
    catchup: Catchup | None = None
    catchup_max: int | None = Field(default=None, ge=1, le=1000)
    paused: bool | None = None


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
