"""Durations written the way operators write them: a whole number and one unit, ``30d``, ``12h``, ``90m``."""

from __future__ import annotations

import re
from datetime import timedelta

from common.errors import AobError

UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# Longer spans are typos, not retention periods (and past datetime's range they could not be subtracted from now).
MAX_DURATION = timedelta(days=36_500)
_DURATION = re.compile(r"([0-9]{1,9})([dhm])")


def parse_duration(text: str) -> timedelta:
    """The span ``text`` names; ``AobError`` saying what was expected when it names none, is zero or too long."""
    match = _DURATION.fullmatch(text.strip())
    expected = "a whole number and a unit d, h or m, e.g. 30d, 12h, 90m"
    if match is None:
        raise AobError(f"duration: expected {expected}, got {text[:40]!r}")
    span = int(match.group(1)) * UNITS[match.group(2)]
    if not timedelta(0) < span <= MAX_DURATION:
        raise AobError(f"duration: expected more than 0 and at most {MAX_DURATION.days}d, got {text.strip()!r}")
    return span
