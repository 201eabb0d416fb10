"""The ``schedules`` table: create, read, change and delete a tenant's schedules."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from common.schedules.model import ScheduleSpec, ScheduleTiming

_COLUMNS = (
    "id, tenant_id, workflow_id, version, inputs, cron, timezone, interval_s, overlap, catchup, catchup_max, paused,"
    " next_fire_at, last_fire_at, created_by, created_at, updated_at"
)
# Every field a PATCH may change; the rest (workflow, tenant, creator) are fixed at creation.
EDITABLE = ("version", "inputs", "cron", "timezone", "interval_s", "overlap", "catchup", "catchup_max", "paused")


def timing_of(row: asyncpg.Record | dict[str, Any]) -> ScheduleTiming:
    """The fire-time rule of a stored schedule."""
    return ScheduleTiming(cron=row["cron"], timezone=row["timezone"], interval_s=row["interval_s"])


class ScheduleStore:
    """Tenant-scoped access to schedules; every method takes the tenant, so no tenant reads another's."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def create(self, tenant_id: str, workflow_id: str, spec: ScheduleSpec, *, by: str | None) -> dict[str, Any]:
        """Insert a schedule whose first fire time is the first after now; returns its row."""
        async with self._pool.acquire() as conn:
            now: datetime = await conn.fetchval("SELECT now()")
            row = await conn.fetchrow(
                "INSERT INTO schedules (tenant_id, workflow_id, version, inputs, cron, timezone, interval_s, overlap,"
                " catchup, catchup_max, paused, next_fire_at, created_by)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                f" RETURNING {_COLUMNS}",
                tenant_id,
                workflow_id,
                spec.version,
                spec.inputs,
                spec.cron,
                spec.timezone,
                spec.interval_s,
                spec.overlap,
                spec.catchup,
                spec.catchup_max,
                spec.paused,
                spec.next_after(now),
                by,
            )
        return dict(row)

    async def get(self, tenant_id: str, schedule_id: str) -> dict[str, Any] | None:
        """One schedule of the tenant, or None."""
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM schedules WHERE tenant_id = $1 AND id = $2", tenant_id, schedule_id
        )
        return None if row is None else dict(row)

    async def list(self, tenant_id: str, *, workflow_id: str | None = None) -> list[dict[str, Any]]:
        """The tenant's schedules, oldest first, optionally of one workflow."""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM schedules WHERE tenant_id = $1 AND ($2::text IS NULL OR workflow_id = $2)"
            " ORDER BY created_at, id",
            tenant_id,
            workflow_id,
        )
        return [dict(row) for row in rows]

    async def update(
        self, tenant_id: str, schedule_id: str, changes: dict[str, Any], *, retime: bool
    ) -> dict[str, Any] | None:
        """Apply ``changes`` (already validated); with ``retime`` the next fire time is recomputed from now, so a
        resumed or re-timed schedule does not catch up on the fire times before the change."""
        async with self._pool.acquire() as conn, conn.transaction():
            current = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM schedules WHERE tenant_id = $1 AND id = $2 FOR UPDATE", tenant_id, schedule_id
            )
            if current is None:
                return None
            merged = dict(current) | changes
            if retime:
                merged["next_fire_at"] = timing_of(merged).next_after(await conn.fetchval("SELECT now()"))
            row = await conn.fetchrow(
                "UPDATE schedules SET version = $3, inputs = $4, cron = $5, timezone = $6, interval_s = $7,"
                " overlap = $8, catchup = $9, catchup_max = $10, paused = $11, next_fire_at = $12, updated_at = now()"
                f" WHERE tenant_id = $1 AND id = $2 RETURNING {_COLUMNS}",
                tenant_id,
                schedule_id,
                *(merged[name] for name in EDITABLE),
                merged["next_fire_at"],
            )
        return dict(row)

    async def delete(self, tenant_id: str, schedule_id: str) -> bool:
        """Delete a schedule (its runs stay, still naming it); returns whether it existed."""
        status: str = await self._pool.execute(
            "DELETE FROM schedules WHERE tenant_id = $1 AND id = $2", tenant_id, schedule_id
        )
        return status == "DELETE 1"
