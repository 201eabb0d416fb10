"""Admission tiers and rate-limit headers, without servers."""

from __future__ import annotations

import pytest

from common.runs.admission import Verdict, agent_tier

TIERS = [(0, "no_agents"), (1, "few_agents"), (2, "few_agents"), (3, "many_agents")]


@pytest.mark.parametrize(("agents", "tier"), TIERS)
def test_agent_tiers(agents: int, tier: str) -> None:
    assert agent_tier(agents) == tier


def test_headers_of_an_allowed_request_have_no_retry_after() -> None:
    headers = Verdict(True, limit=100, remaining=41, reset_ms=12_345).headers()
    assert headers == {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "41", "X-RateLimit-Reset": "13"}


def test_refused_request_says_when_to_retry_at_least_one_second() -> None:
    headers = Verdict(False, limit=5, remaining=0, reset_ms=10).headers()
    assert headers["Retry-After"] == "1" and headers["X-RateLimit-Remaining"] == "0"
