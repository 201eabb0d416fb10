"""apply_completions: a batch of decisions over several runs leaves what applying them one at a time leaves."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.decisions import Decision
from common.runs.messages import NodeError
from common.runs.scripts import Scripts
from common.runs.start import start_runs
from tests.integration.common.runs.test_start import CHAIN, FAN_IN, _snapshot, _starts


def _decided(token_id: str, **fields: Any) -> Decision:
    node_id = token_id.split(":")[1]
    done = {"attempt": 1, "ir_version": 1, "worker_id": "w", "started_at": 1.0, "ended_at": 2.0}
    return Decision(token_id=token_id, node_id=node_id, **done, **fields)


def _decisions() -> list[tuple[str, Decision, str]]:
    chain, fan = json.dumps(CHAIN.topology()), json.dumps(FAN_IN.topology())
    error = NodeError(type="boom", message="no", retryable=False)
    a_done = _decided("0:a:1", outcome="succeeded", output_ref="1", edges=(("b", True),))
    return [
        # r1 succeeds its first node; r2's x fails and fails the run; r3 (a child) succeeds a, then b: it ends.
        ("r1", a_done, chain),
        ("r2", _decided("0:x:1", outcome="failed", error=error, edges=(("z", False),), fail_run=True), fan),
        ("r3", _decided("0:a:1", outcome="succeeded", output_ref="3", edges=(("b", True),)), chain),
        ("r3", _decided("0:b:1", outcome="succeeded", output_ref="4", edges=()), chain),
        # A duplicate within the batch is applied once.
        ("r1", a_done, chain),
    ]


async def test_a_batch_over_several_runs_equals_one_call_per_decision(
    redis: aioredis.Redis, keys: Keys, key_prefix: str
) -> None:
    batch = Scripts(redis, keys)
    single = Scripts(redis, Keys(prefix=f"{key_prefix}one:"))
    for scripts in (batch, single):
        await start_runs(scripts, _starts(), max_agents=5)

    together = await batch.apply_completions(_decisions(), 5)
    one_by_one = [(await single.apply_completions([d], 5))[0] for d in _decisions()]

    assert together == one_by_one
    outcomes = [["applied", "running"], ["applied", "failed"], ["applied", "running"], ["finished", "succeeded"]]
    assert [r[:2] for r in together] == [*outcomes, ["duplicate", "running"]]
    assert await _snapshot(redis, batch.keys) == await _snapshot(redis, single.keys)
