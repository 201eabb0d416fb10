"""Every writer of ``wf.dlq`` writes the one ``DeadLetter`` shape and keeps the stream capped at about
``AOB_DLQ_MAXLEN`` entries (``XADD MAXLEN ~`` trims whole stream nodes, so the cap is approximate)."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.dead_letters import DeadLetter
from common.runs.messages import CompletionSignal
from coordinator import Coordinator
from tests.support.deployment import Deployment
from workers import Worker
from workers.builtin import BuiltinHandler

CAP = 10
WRITTEN = 350
# Entries per stream node (Redis' stream-node-max-entries default): what approximate trimming may keep beyond the cap.
NODE = 100


async def newest(redis: aioredis.Redis, keys: Keys) -> DeadLetter:
    [(entry_id, fields)] = await redis.xrevrange(keys.dlq, count=1)
    return DeadLetter.read(entry_id, fields)


async def test_the_coordinator_caps_the_signals_it_parks(
    deployment: Deployment, redis: aioredis.Redis, keys: Keys
) -> None:
    coordinator = Coordinator(deployment.replace(dlq_maxlen=CAP).coordinator(), redis, coordinator_id="c1")
    signals = [
        CompletionSignal(run_id=f"gone-{i}", node_id="n", token_id="0:n:1", attempt=1, status="succeeded")
        for i in range(WRITTEN)
    ]
    await coordinator.process_batch([signal.model_dump_json() for signal in signals])
    assert CAP <= await redis.xlen(keys.dlq) <= CAP + NODE
    last = await newest(redis, keys)
    assert (last.kind, last.run_id, last.reason, last.by) == ("signal", f"gone-{WRITTEN - 1}", "no such run", "c1")


async def test_the_worker_caps_the_tokens_it_parks(deployment: Deployment, redis: aioredis.Redis, keys: Keys) -> None:
    worker = Worker(deployment.replace(dlq_maxlen=CAP).worker(), redis, [BuiltinHandler()], worker_id="w1")
    await worker.ensure_groups()
    stream = keys.shard(0).tasks("builtin")
    for i in range(WRITTEN):
        token = json.dumps({"v": 9, "run_id": f"r{i}", "token_id": "0:n:1"})
        await worker.dead_letter(stream, f"{i + 1}-0", {"t": token}, None, "malformed token")
    assert CAP <= await redis.xlen(keys.dlq) <= CAP + NODE
    last = await newest(redis, keys)
    assert (last.kind, last.run_id, last.source, last.source_id, last.by) == (
        "token",
        f"r{WRITTEN - 1}",
        stream,
        f"{WRITTEN}-0",
        "w1",
    )
