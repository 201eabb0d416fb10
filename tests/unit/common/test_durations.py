"""``parse_duration``: a whole number and one unit, positive and bounded, or one clear error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from common.durations import parse_duration
from common.errors import AobError


@pytest.mark.parametrize(
    ("text", "span"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("90m", timedelta(minutes=90)), (" 1d ", timedelta(1))],
)
def test_a_number_and_a_unit(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


@pytest.mark.parametrize(
    "text", ["", "30", "d", "30s", "1.5d", "-1d", "30 d", "1d12h", "30D", "\u0661\u0662h", "9999999999d"]
)
def test_anything_else_says_what_was_expected(text: str) -> None:
    with pytest.raises(AobError, match=r"^duration: expected a whole number and a unit d, h or m, e\.g\. 30d"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0d", "0m", "36501d", "999999999d"])
def test_zero_and_absurd_spans_are_refused(text: str) -> None:
    with pytest.raises(AobError, match=r"^duration: expected more than 0 and at most 36500d"):
        parse_duration(text)
