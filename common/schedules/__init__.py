"""Schedules: workflows started on a cron expression or an interval (model, store, and the firing side)."""

from common.schedules.firing import ScheduleFirer, idempotency_key
from common.schedules.model import SchedulePatch, ScheduleSpec, ScheduleTiming
from common.schedules.store import EDITABLE, ScheduleStore, timing_of

__all__ = [
    "EDITABLE",
    "ScheduleFirer",
    "SchedulePatch",
    "ScheduleSpec",
    "ScheduleStore",
    "ScheduleTiming",
    "idempotency_key",
    "timing_of",
]
