"""Schedule timing: cron in a time zone through croniter, epoch-aligned intervals, and the fire-time walks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from common.schedules import ScheduleSpec, ScheduleTiming


def test_cron_reads_in_its_time_zone_across_a_daylight_saving_change() -> None:
    timing = ScheduleTiming(cron="0 9 * * *", timezone="Europe/Paris")
    fires = timing.upcoming(datetime(2026, 3, 28, 12, tzinfo=UTC), 2)
    # 09:00 in Paris is 08:00 UTC in winter time and 07:00 UTC from 29 March on.
    assert fires == [datetime(2026, 3, 29, 7, tzinfo=UTC), datetime(2026, 3, 30, 7, tzinfo=UTC)]


def test_intervals_are_aligned_to_the_epoch() -> None:
    timing = ScheduleTiming(interval_s=60)
    moment = datetime(2026, 1, 1, 10, 0, 30, tzinfo=UTC)
    assert timing.next_after(moment) == datetime(2026, 1, 1, 10, 1, tzinfo=UTC)
    assert timing.latest_at_or_before(moment) == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert timing.next_after(datetime(2026, 1, 1, 10, 1, tzinfo=UTC)) == datetime(2026, 1, 1, 10, 2, tzinfo=UTC)


@pytest.mark.parametrize("timing", [ScheduleTiming(interval_s=3600), ScheduleTiming(cron="0 * * * *")])
def test_between_keeps_the_latest_fire_times_in_order(timing: ScheduleTiming) -> None:
    end = datetime(2026, 1, 1, 10, tzinfo=UTC)
    hours = [end - timedelta(hours=h) for h in (2, 1, 0)]
    assert timing.between(end - timedelta(hours=5), end, latest=3) == hours
    assert timing.between(end - timedelta(hours=1, minutes=30), end, latest=10) == hours[1:]
    assert timing.between(end + timedelta(minutes=1), end + timedelta(minutes=59), latest=10) == []


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"cron": "61 * * * *"}, ("cron",)),
        ({"cron": "0 0 31 2 *"}, ("cron",)),
        ({"cron": "0 0 1 1 * 0 2030"}, ("cron",)),
        ({"cron": "0 * * * *", "timezone": "Not/AZone"}, ("timezone",)),
        ({"interval_s": 0}, ("interval_s",)),
        ({"cron": "0 * * * *", "interval_s": 5}, ()),
        ({}, ()),
        ({"interval_s": 5, "overlap": "queue"}, ("overlap",)),
    ],
)
def test_invalid_specs_name_the_field(fields: dict[str, object], where: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as raised:
        ScheduleSpec.model_validate({"workflow": "w", **fields})
    assert where in [error["loc"] for error in raised.value.errors()]
