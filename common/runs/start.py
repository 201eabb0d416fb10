"""Starting a run: one script creates its hot state, writes its IR and queues its entry nodes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.runs.scripts import Scripts
from common.workflow.ir import IR


@dataclass(frozen=True)
class RunStart:
    """What a new run needs besides its IR."""

    run_id: str
    tenant_id: str
    workflow_id: str
    workflow_name: str
    version: int
    inputs: dict[str, Any]
    started_by: str | None = None
    parent_run_id: str | None = None
    parent_node_id: str | None = None
    timeout_s: float | None = None


async def start_run(scripts: Scripts, start: RunStart, ir: IR, *, max_agents: int) -> str:
    """Create the run's hot state and queue its entry nodes; returns the run status (idempotent)."""
    fields: dict[str, Any] = {
        "run_id": start.run_id,
        "tenant": start.tenant_id,
        "workflow_id": start.workflow_id,
        "workflow_name": start.workflow_name,
        "version": start.version,
        "ir_version": ir.version,
        "inputs": json.dumps(start.inputs),
    }
    optional = {
        "started_by": start.started_by,
        "parent_run_id": start.parent_run_id,
        "parent_node_id": start.parent_node_id,
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    result = await scripts.run_script(
        "start_run",
        start.run_id,
        json.dumps(fields),
        ir.model_dump_json(),
        json.dumps(ir.topology()),
        json.dumps(ir.entries),
        max_agents,
        # The deadline is set in the script, from the Redis clock every due time uses.
        int(start.timeout_s * 1000) if start.timeout_s else 0,
    )
    return str(result[1])
