"""A finished run's outputs: its ``outputs`` templates, or the outputs of its succeeded terminal nodes."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as aioredis

from common.errors import TemplateError
from common.keys import Keys
from common.runs.cas import Cas
from common.workflow.ir import IR
from common.workflow.templates import TemplateLimits, TemplateScope, render_value

logger = logging.getLogger(__name__)


async def compute_outputs(
    redis: aioredis.Redis, keys: Keys, cas: Cas, run_id: str, ir: IR, limits: TemplateLimits
) -> dict[str, Any]:
    """Evaluate the run's outputs from its stored node states and outputs, as one evaluation under ``limits``."""
    states_raw, ctx_raw, inputs_raw = await _load(redis, keys, run_id)
    outputs = {node_id: await cas.load_output(ref) for node_id, ref in ctx_raw.items()}
    if ir.outputs:
        scope = TemplateScope(inputs=json.loads(inputs_raw or "{}"), nodes=outputs, limits=limits)
        try:
            rendered = render_value(ir.outputs, scope)
        except TemplateError as exc:
            logger.warning("outputs of run %s could not be evaluated: %s", run_id, exc.message)
            return {}
        return dict(rendered)
    succeeded = {node_id for node_id, raw in states_raw.items() if json.loads(raw).get("status") == "succeeded"}
    terminal = [node_id for node_id in ir.nodes if not ir.successors.get(node_id)]
    return {node_id: outputs.get(node_id) for node_id in terminal if node_id in succeeded}


async def _load(redis: aioredis.Redis, keys: Keys, run_id: str) -> tuple[dict[str, str], dict[str, str], str | None]:
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.nodes(run_id))
        pipe.hgetall(keys.ctx(run_id))
        pipe.hget(keys.run(run_id), "inputs")
        states, ctx, inputs = await pipe.execute()
    return states, ctx, inputs
