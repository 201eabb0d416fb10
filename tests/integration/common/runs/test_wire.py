"""What the run-state scripts write reads back through the wire models, at their version, under the given keys."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.cancel import cancel_run
from common.runs.ledger import RunEntry, StepEntry, parse_ledger_entry
from common.runs.messages import ChildRunEnded, Event, Token, WireModel
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_run
from common.workflow.compiler import compile_definition


async def test_scripts_write_versioned_messages_to_the_keys_of_keys_py(redis: aioredis.Redis, keys: Keys) -> None:
    scripts = Scripts(redis, keys)
    definition = {
        "name": "w",
        "nodes": [{"id": "a", "type": "noop"}, {"id": "d", "type": "delay", "config": {"seconds": 0}}],
    }
    start = RunStart(
        run_id="c1",
        tenant_id="acme",
        workflow_id="w",
        workflow_name="w",
        version=1,
        inputs={"x": 1},
        parent_run_id="p1",
        parent_node_id="m",
    )
    await start_run(scripts, start, compile_definition(definition).ir, max_agents=-1)
    # The delay node's token waits in the delayed set, due at once; move_due takes it to the built-in stream.
    shard = keys.shard_for("c1")
    assert await redis.zcard(shard.delayed) == 1
    assert await scripts.move_due(shard.index, 10) == 1
    assert await cancel_run(scripts, "c1", reason="test") == "ok"

    tokens = [Token.model_validate_json(f["t"]) for _, f in await redis.xrange(shard.tasks("builtin"))]
    events = [Event.model_validate_json(f["e"]) for _, f in await redis.xrange(keys.events("c1"))]
    tenant = [Event.model_validate_json(f["e"]) for _, f in await redis.xrange(shard.tenant_events("acme"))]
    ledger = [parse_ledger_entry(f["l"]) for _, f in await redis.xrange(shard.ledger)]
    children = [ChildRunEnded.model_validate_json(f["c"]) for _, f in await redis.xrange(shard.children)]

    assert sorted(token.node_id for token in tokens) == ["a", "d"]
    assert [event.type for event in tenant] == ["run_started", "run_cancelled"]
    assert {event.type for event in events} >= {"run_started", "node_queued", "run_cancelled"}
    assert {type(entry) for entry in ledger} == {RunEntry, StepEntry}
    assert children == [
        ChildRunEnded(
            run_id="c1",
            parent_run_id="p1",
            parent_node_id="m",
            status="cancelled",
            error={"type": "cancelled", "message": "test"},
        )
    ]
    messages: list[WireModel] = [*tokens, *events, *tenant, *ledger, *children]
    assert all(message.v == type(message).schema_version() for message in messages)
