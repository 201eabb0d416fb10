"""start_runs: many runs in one script call, each as start_run would have started it, idempotently."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_run, start_runs
from common.workflow.compiler import compile_definition
from common.workflow.ir import IR
from tests.support.shards import delayed_members, task_entries

CHAIN = compile_definition(
    {
        "name": "chain",
        "nodes": [{"id": "a", "type": "noop"}, {"id": "b", "type": "noop"}],
        "edges": [{"from": "a", "to": "b"}],
    }
).ir
FAN_IN = compile_definition(
    {
        "name": "two-entries",
        "nodes": [
            {"id": "x", "type": "noop"},
            {"id": "y", "type": "delay", "config": {"seconds": 5}},
            {"id": "z", "type": "noop"},
        ],
        "edges": [{"from": "x", "to": "z"}, {"from": "y", "to": "z"}],
    }
).ir
# Times differ between two starts; everything else must not.
TIMES = {"started_ms", "ended_ms", "deadline_ms", "queued_at", "ts", "started_at", "ended_at", "deadline_at"}


def _starts() -> list[tuple[RunStart, IR]]:
    return [
        (RunStart("r1", "acme", "wf-chain", "chain", 1, {"n": 1}), CHAIN),
        (RunStart("r2", "acme", "wf-fan", "two-entries", 3, {}, started_by="key-1", timeout_s=30), FAN_IN),
        (RunStart("r3", "beta", "wf-chain", "chain", 1, {"n": 3}, parent_run_id="p", parent_node_id="m"), CHAIN),
    ]


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in TIMES}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _parsed(text: str) -> Any:
    try:
        return _timeless(json.loads(text))
    except ValueError:
        return text


async def _snapshot(redis: aioredis.Redis, keys: Keys) -> dict[str, Any]:
    """The hot state of r1..r3 under ``keys``, without times, with each stream's entries in order."""
    snap: dict[str, Any] = {}
    for run_id in ("r1", "r2", "r3"):
        run = await redis.hgetall(keys.run(run_id))
        snap[run_id] = {
            "run": {k: _parsed(v) for k, v in run.items() if k not in TIMES},
            "ir": json.loads(await redis.get(keys.ir(run_id)) or "null"),
            "nodes": {k: _parsed(v) for k, v in (await redis.hgetall(keys.nodes(run_id))).items()},
            "join": await redis.hgetall(keys.join(run_id)),
            "events": [_parsed(f["e"]) for _, f in await redis.xrange(keys.events(run_id))],
        }
    streams = [*keys.tenant_events("acme"), *keys.tenant_events("beta")]
    streams += [s for shard in keys.all_shards() for s in (shard.ledger, shard.tasks("builtin"))]
    for stream in streams:
        snap[stream.removeprefix(keys.prefix)] = [
            {k: _parsed(v) for k, v in f.items()} for _, f in await redis.xrange(stream)
        ]
    snap["delayed"] = [_parsed(m) for m in await delayed_members(redis, keys)]
    snap["deadlines"] = [r for shard in keys.all_shards() for r in await redis.zrange(shard.run_deadlines, 0, -1)]
    snap["active"] = sorted(await redis.zrange(keys.tenant_active_runs("acme"), 0, -1))
    return snap


async def test_start_runs_leaves_what_one_start_run_per_run_leaves(
    redis: aioredis.Redis, keys: Keys, key_prefix: str
) -> None:
    batch = Scripts(redis, keys)
    single = Scripts(redis, Keys(prefix=f"{key_prefix}one:"))

    statuses = await start_runs(batch, _starts(), max_agents=5)
    one_by_one = [await start_run(single, start, ir, max_agents=5) for start, ir in _starts()]

    assert statuses == one_by_one == ["running", "running", "running"]
    assert await _snapshot(redis, batch.keys) == await _snapshot(redis, single.keys)


async def test_start_runs_is_idempotent_per_run(redis: aioredis.Redis, keys: Keys) -> None:
    scripts = Scripts(redis, keys)
    await start_runs(scripts, _starts()[:1], max_agents=5)
    before = len(await task_entries(redis, keys, "builtin"))

    # r1 exists: left alone; r2 and r3 start; a repeated run id in one call starts once.
    statuses = await start_runs(scripts, [*_starts(), _starts()[2]], max_agents=5)

    assert statuses == ["running", "running", "running", "running"]
    assert len(await task_entries(redis, keys, "builtin")) == before + 2  # r2's x (y waits in delayed), r3's a
    assert len(await delayed_members(redis, keys)) == 1
    started = [json.loads(f["e"]) for stream in keys.tenant_events("acme") for _, f in await redis.xrange(stream)]
    assert sorted(e["run_id"] for e in started if e["type"] == "run_started") == ["r1", "r2"]


async def test_start_runs_of_nothing_calls_no_script(redis: aioredis.Redis, keys: Keys) -> None:
    assert await start_runs(Scripts(redis, keys), [], max_agents=5) == []
