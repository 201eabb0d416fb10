"""Retention (admin): pruning runs that ended long ago, audited.

An admin prunes its tenant's runs; the bootstrap admin may prune every tenant's at once (``all_tenants``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, field_validator

from common.audit import add_audit_detail, record_audit
from common.durations import parse_duration
from common.errors import AobError
from common.runs.prune import PruneReport, prune_runs
from orchestrator._errors import ApiError
from orchestrator._state import Admin, State

router = APIRouter(prefix="/api/v1", tags=["admin"])


class PruneRequest(BaseModel):
    """Which runs to prune: those that ended more than ``older_than`` ago (``30d``, ``12h``, ``90m``)."""

    model_config = ConfigDict(extra="forbid")

    older_than: str = Field(max_length=40)
    dry_run: bool = False
    all_tenants: bool = False

    @field_validator("older_than")
    @classmethod
    def _parsed(cls, value: str) -> str:
        try:
            parse_duration(value)
        except AobError as exc:
            raise ValueError(exc.message) from None
        return value

    def span(self) -> timedelta:
        return parse_duration(self.older_than)


@router.post("/admin/prune")
async def prune_route(body: PruneRequest, state: State, caller: Admin) -> PruneReport:
    """Delete the caller's tenant's runs that ended before now - ``older_than``, with their steps, events, logs,
    patches, approvals and the blobs no remaining run refers to; ``dry_run`` only counts."""
    if body.all_tenants and not caller.is_bootstrap:
        raise ApiError(403, "all_tenants: only the bootstrap admin may prune every tenant's runs")
    cutoff = datetime.now(UTC) - body.span()
    tenant_id = None if body.all_tenants else caller.tenant_id
    if body.dry_run:
        return await prune_runs(state.pool, state.redis, state.keys, cutoff=cutoff, tenant_id=tenant_id, dry_run=True)
    # Recorded before it starts: a prune that fails half-way has deleted some batches, and the entry says so.
    detail = {"older_than": body.older_than, "cutoff": cutoff.isoformat(), "all_tenants": body.all_tenants}
    entry_id = await record_audit(
        state.pool, tenant_id=caller.tenant_id, key_id=caller.key_id, action="runs.prune", target="runs", detail=detail
    )
    report = await prune_runs(state.pool, state.redis, state.keys, cutoff=cutoff, tenant_id=tenant_id)
    await add_audit_detail(state.pool, entry_id, {"deleted": report.model_dump(exclude={"cutoff", "dry_run"})})
    return report
