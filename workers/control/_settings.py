"""Settings of the ``control`` worker: nesting cap and how it follows, reclaims and sweeps child-run ends."""

from __future__ import annotations

from pydantic import Field

from common.settings import EngineSettings


class ControlWorkerSettings(EngineSettings):
    """Worker settings plus the child-run machinery's: ``AOB_MAX_NESTING_DEPTH=5`` and friends."""

    max_nesting_depth: int = Field(default=5, ge=1, le=50, description="deepest child run (top-level run = 0)")
    control_block_ms: int = Field(default=1000, ge=1, description="how long one read of wf.children waits")
    control_reclaim_idle_s: float = Field(
        default=30.0, gt=0, description="take over child-end records a dead control worker left unacknowledged"
    )
    control_sweep_interval_s: float = Field(
        default=1.0, gt=0, description="how often waiting control nodes are re-checked (ended parents, timeouts)"
    )
