"""Settings of the ``hitl`` worker: how often its sweeper looks for lost completions and orphaned approvals."""

from __future__ import annotations

from pydantic import Field

from common.settings import EngineSettings


class HitlWorkerSettings(EngineSettings):
    """Worker settings plus the approval sweeper's timing."""

    hitl_sweep_interval_s: float = Field(default=30.0, gt=0, description="seconds between sweeps")
    hitl_repush_grace_s: float = Field(
        default=10.0, ge=0, description="a decision this old whose node still waits lost its completion"
    )
    hitl_repush_window_s: float = Field(
        default=86_400.0, gt=0, description="decisions older than this are not looked at again"
    )
