"""Reading what the engine needs of a run before changing it from outside: IR, node states, outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from common.errors import TemplateError
from common.runs.cas import Cas
from common.runs.scripts import Scripts
from common.workflow.edges import edge_live
from common.workflow.ir import IR, IrEdge
from common.workflow.templates import TemplateScope


@dataclass
class RunView:
    """A snapshot of one run's IR, node states, outputs and inputs."""

    run_id: str
    status: str | None
    epoch: str
    ir: IR | None
    states: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    inputs: dict[str, Any]

    def edge_live_after_success(self, source: str, edge: IrEdge) -> bool | None:
        """Liveness of ``edge`` if ``source`` succeeded; ``None`` while its output is unknown."""
        state = self.states.get(source, {})
        if state.get("status") != "succeeded":
            return None
        scope = TemplateScope(inputs=self.inputs, nodes=self.outputs)
        try:
            return edge_live(edge, state.get("branch"), self.outputs.get(source), scope)
        except TemplateError:
            return False


async def load_run_view(scripts: Scripts, run_id: str) -> RunView:
    """Read one run's hot state in one round trip (outputs fetched from CAS when needed)."""
    keys = scripts.keys
    async with scripts.redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.run(run_id), ["status", "epoch", "inputs"])
        pipe.get(keys.ir(run_id))
        pipe.hgetall(keys.nodes(run_id))
        pipe.hgetall(keys.ctx(run_id))
        (status, epoch, inputs), ir_raw, states_raw, ctx_raw = await pipe.execute()
    cas = Cas(scripts.redis, keys)
    return RunView(
        run_id=run_id,
        status=status,
        epoch=epoch or "0",
        ir=IR.model_validate_json(ir_raw) if ir_raw else None,
        states={node_id: json.loads(raw) for node_id, raw in states_raw.items()},
        outputs={node_id: await cas.load_output(ref) for node_id, ref in ctx_raw.items()},
        inputs=json.loads(inputs or "{}"),
    )
