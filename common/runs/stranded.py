"""Runs whose ``runs`` row was written but whose start never reached Redis (a crash in between), started now."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_run
from common.workflow.compiler import compile_definition

logger = logging.getLogger(__name__)

_STRANDED_SQL = """
SELECT id, tenant_id, workflow_id, workflow_name, version, inputs, started_by, definition FROM runs
WHERE status = 'queued' AND parent_run_id IS NULL AND created_at < now() - make_interval(secs => $1)
ORDER BY created_at LIMIT $2
"""


async def start_if_stranded(scripts: Scripts, row: asyncpg.Record | dict[str, Any], *, max_agents: int) -> bool:
    """Start the run of ``row`` unless Redis already holds it; returns whether it was started now.

    Starting is idempotent, so a start racing the original request's own start changes nothing.
    """
    if await scripts.redis.exists(scripts.keys.run(row["id"])):
        return False
    ir = compile_definition(row["definition"], max_agents=max_agents, name=row["workflow_name"]).ir
    start = RunStart(
        run_id=row["id"],
        tenant_id=row["tenant_id"],
        workflow_id=row["workflow_id"],
        workflow_name=row["workflow_name"],
        version=row["version"],
        inputs=row["inputs"],
        started_by=row["started_by"],
    )
    await start_run(scripts, start, ir, max_agents=max_agents)
    logger.warning("run %s was recorded but never started: started it now", row["id"])
    return True


async def start_stranded_runs(
    scripts: Scripts, pool: asyncpg.Pool, *, older_than_s: float, max_agents: int, batch: int = 100
) -> list[str]:
    """Start every top-level run left ``queued`` in Postgres for ``older_than_s`` with no hot state."""
    started = []
    for row in await pool.fetch(_STRANDED_SQL, older_than_s, batch):
        if await start_if_stranded(scripts, row, max_agents=max_agents):
            started.append(row["id"])
    return started
