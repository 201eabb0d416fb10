"""The settings group of the HITL worker's sweeper."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HitlNodeFields(BaseModel):
    """HITL nodes: how often the sweeper looks for lost completions and orphaned approvals."""

    hitl_sweep_interval_s: float = Field(default=30.0, gt=0, description="seconds between sweeps")
    hitl_repush_grace_s: float = Field(
        default=10.0, ge=0, description="a decision this old whose node still waits lost its completion"
    )
    hitl_repush_window_s: float = Field(
        default=86_400.0, gt=0, description="decisions older than this are not looked at again"
    )
