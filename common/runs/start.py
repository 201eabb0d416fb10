"""Starting runs: one script call per shard creates their hot state, writes their IRs and queues their entry nodes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from common.runs.scripts import Scripts, by_shard
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
    # The trace the run's spans join (W3C traceparent); None when tracing is off.
    traceparent: str | None = None


async def start_run(scripts: Scripts, start: RunStart, ir: IR, *, max_agents: int) -> str:
    """Create the run's hot state and queue its entry nodes; returns the run status (idempotent)."""
    [status] = await start_runs(scripts, [(start, ir)], max_agents=max_agents)
    return status


async def start_runs(scripts: Scripts, starts: Sequence[tuple[RunStart, IR]], *, max_agents: int) -> list[str]:
    """Start every run of ``starts``, one script call per shard (each run idempotently, as ``start_run`` does);
    returns their statuses in order. Runs of one shard sharing an IR object send it once."""
    groups = by_shard(scripts.keys, starts, lambda item: item[0].run_id)
    replies = await asyncio.gather(
        *(
            _start_in_shard(scripts, shard, [starts[i] for i in positions], max_agents)
            for shard, positions in groups.items()
        )
    )
    statuses = [""] * len(starts)
    for positions, reply in zip(groups.values(), replies, strict=True):
        for position, status in zip(positions, reply, strict=True):
            statuses[position] = status
    return statuses


async def _start_in_shard(
    scripts: Scripts, shard: int, starts: Sequence[tuple[RunStart, IR]], max_agents: int
) -> list[str]:
    # Distinct IRs by identity: a burst of runs of one workflow version passes the same compiled IR.
    irs: dict[int, int] = {}
    ir_args: list[str] = []
    runs: list[list[Any]] = []
    keys: list[str] = []
    for start, ir in starts:
        if id(ir) not in irs:
            irs[id(ir)] = len(irs) + 1
            ir_args += [ir.model_dump_json(), json.dumps(ir.topology()), json.dumps(ir.entries)]
        # The deadline is set in the script, from the Redis clock every due time uses.
        runs.append([_fields(start, ir), irs[id(ir)], int(start.timeout_s * 1000) if start.timeout_s else 0])
        # The first run brings the five keys every run of the shard shares; each further run only its seven own.
        keys += scripts.run_keys(start.run_id)[: 7 if len(runs) > 1 else None]
    result = await scripts.run_batch_script("start_runs", shard, keys, json.dumps(runs), max_agents, *ir_args)
    return [str(status) for _, status in result]


def _fields(start: RunStart, ir: IR) -> dict[str, Any]:
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
        "traceparent": start.traceparent,
    }
    fields.update({k: v for k, v in optional.items() if v is not None})
    return fields
