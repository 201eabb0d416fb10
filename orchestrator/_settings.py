"""Orchestrator settings: the shared API settings plus rate limits."""

from __future__ import annotations

from pydantic import Field

from common.settings import ApiSettings


class OrchestratorSettings(ApiSettings):
    """``ApiSettings`` plus the limits of §7 (per minute unless named otherwise)."""

    rate_global_per_min: int = Field(default=6000, ge=1, description="all requests, all tenants")
    rate_key_per_min: int = Field(default=1200, ge=1, description="requests per API key")
    rate_runs_no_agents_per_min: int = Field(default=100, ge=1, description="run submissions per key, no agents")
    rate_runs_few_agents_per_min: int = Field(default=20, ge=1, description="run submissions per key, 1-2 agents")
    rate_runs_many_agents_per_min: int = Field(default=5, ge=1, description="run submissions per key, 3+ agents")
    max_active_runs_per_tenant: int = Field(default=100, ge=1, description="runs queued or running at once")
    rate_window_s: int = Field(default=60, ge=1, description="length of a rate-limit window")


def orchestrator_settings(settings: ApiSettings) -> OrchestratorSettings:
    """``settings`` as ``OrchestratorSettings``; limits not given come from the environment or defaults."""
    if isinstance(settings, OrchestratorSettings):
        return settings
    return OrchestratorSettings(**settings.model_dump())
