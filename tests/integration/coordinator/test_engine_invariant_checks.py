"""The invariant checks of the property and chaos tests can fail: each catches a violation planted in a real run's
state, and the state machine itself fails (naming the check) on an engine with a planted bug."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from hypothesis import Phase, settings

from common.runs.messages import CompletionSignal
from tests.integration.coordinator.test_engine_properties import BOUNDED, EngineHistories, run_histories
from tests.support import invariants
from tests.support.deployment import Deployment
from tests.support.executions import Execution
from tests.support.scripted import ScriptedHandler, scripted_type
from tests.support.shards import signals_waiting
from tests.support.stepped import SteppedEngine, World, open_world

DIAMOND = {
    "name": "t",
    "nodes": [
        {"id": "a", "type": "transform", "config": {"output": 1}},
        {"id": "b", "type": "scripted", "config": {"output": 2}},
        {"id": "c", "type": "noop", "config": {}},
        {"id": "d", "type": "noop", "config": {}},
    ],
    "edges": [{"from": "a", "to": "b"}, {"from": "a", "to": "c"}, {"from": "b", "to": "d"}, {"from": "c", "to": "d"}],
}
EXPECTED = dict.fromkeys("abcd", "succeeded")

Plant = Callable[[SteppedEngine, str], Awaitable[None]]


async def set_node(engine: SteppedEngine, run_id: str, node_id: str, **changes: Any) -> None:
    state = (await engine.node_states(run_id))[node_id]
    await engine.redis.hset(engine.keys.nodes(run_id), node_id, json.dumps(state | changes))


async def event(engine: SteppedEngine, run_id: str, etype: str, node_id: str | None = None) -> None:
    body = {"v": 1, "type": etype, "run_id": run_id, "ts": 0, "data": {}} | ({"node_id": node_id} if node_id else {})
    await engine.redis.xadd(engine.keys.events(run_id), {"e": json.dumps(body)})


async def stale_execution(engine: SteppedEngine, run_id: str) -> None:
    engine.executions.append(Execution("0:b:1", run_id, "b", 1, "running"))


async def repeated_execution(engine: SteppedEngine, run_id: str) -> None:
    engine.executions.append(next(e for e in engine.executions if e.node_id == "b"))


async def undelayed_execution(engine: SteppedEngine, run_id: str) -> None:
    engine.executions.append(Execution("0:c:1", run_id, "c", 0, "running", "delay"))


async def pg(engine: SteppedEngine, sql: str, *args: Any) -> None:
    assert engine.pool is not None
    await engine.pool.execute(sql, *args)


# check -> what breaks it in a run of DIAMOND that succeeded and was recorded
PLANTS: dict[str, Plant] = {
    "run_ended": lambda e, r: e.redis.hset(e.keys.run(r), "status", "running"),
    "one_final_event_per_epoch": lambda e, r: event(e, r, "node_succeeded", "d"),
    "succeeded_run_complete": lambda e, r: set_node(e, r, "d", status="pending"),
    "succeeded_run_not_cancelled": lambda e, r: set_node(e, r, "c", status="cancelled"),
    "succeeded_run_failures_handled": lambda e, r: set_node(e, r, "c", status="failed"),
    "events_match_states": lambda e, r: set_node(e, r, "c", status="skipped"),
    "outputs_kept": lambda e, r: e.redis.hdel(e.keys.ctx(r), "b"),
    "nothing_in_flight_after_end": lambda e, r: set_node(e, r, "d", status="running"),
    "no_engine_invariant_failure": lambda e, r: e.redis.hset(e.keys.run(r), "error", '{"type": "engine_invariant"}'),
    "no_stale_epoch_execution": stale_execution,
    "token_executed_once": repeated_execution,
    "delay_waited": undelayed_execution,
    "expected_outcome": lambda e, r: set_node(e, r, "c", status="skipped"),
    "recorded_run": lambda e, r: pg(e, "UPDATE runs SET status = 'failed' WHERE id = $1", r),
    "recorded_run_error": lambda e, r: pg(e, "UPDATE runs SET ended_at = NULL WHERE id = $1", r),
    "recorded_step": lambda e, r: pg(e, "UPDATE run_steps SET status = 'queued' WHERE run_id = $1", r),
    "recorded_steps_ended": lambda e, r: pg(e, "INSERT INTO run_steps VALUES ($1, 'b', 7, 'running')", r),
}


async def found(engine: SteppedEngine, run_id: str) -> set[str]:
    """Every check that fails on the run now (the counter check is planted on a running run separately)."""
    assert engine.pool is not None
    state = await invariants.read_run(engine, run_id)
    violations = invariants.ended_run(state) + invariants.final_events_per_epoch(state)
    violations += invariants.events_match_states(state) + invariants.outputs_kept(state)
    violations += invariants.executions(engine.executions) + invariants.outcome(state, "succeeded", EXPECTED)
    violations += invariants.delays_waited(engine.executions, engine.delayed)
    violations += await invariants.recorded(engine.pool, state)
    return {v.check for v in violations}


@pytest.fixture(autouse=True)
def _scripted() -> Iterator[None]:
    with scripted_type():
        yield


def test_every_check_has_a_plant() -> None:
    assert set(PLANTS) | {"counter_matches_in_flight"} == invariants.CHECKS


@pytest.mark.parametrize("check", sorted(PLANTS))
async def test_a_planted_violation_is_caught(
    check: str, deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    async with SteppedEngine(deployment, redis, handlers=[ScriptedHandler()], pool=pg_pool) as engine:
        run_id = await engine.submit(DIAMOND)
        await engine.settle()
        await engine.record()
        assert await found(engine, run_id) == set()
        await PLANTS[check](engine, run_id)
        assert check in await found(engine, run_id)


async def test_a_counter_that_drifted_is_caught(deployment: Deployment, redis: aioredis.Redis) -> None:
    async with SteppedEngine(deployment, redis, handlers=[ScriptedHandler()]) as engine:
        run_id = await engine.submit(DIAMOND)
        await engine.work("builtin", 1)
        assert await invariants.counters(engine, [run_id]) == []
        # `a`'s completion waits in the signal list: applied twice, it would take the counter one step too low.
        signal = json.loads((await redis.lrange(engine.keys.shard_for(run_id).completion_signals, 0, 0))[0])
        await redis.sadd(engine.keys.applied(run_id), CompletionSignal.model_validate(signal).token_id)
        assert [v.check for v in await invariants.counters(engine, [run_id])] == ["counter_matches_in_flight"]


class DoubleCountingEngine(SteppedEngine):
    """A planted engine bug: every coordinator batch loses one decrement of each running run it touched."""

    async def coordinate(self, max_signals: int) -> int:
        raw = (await signals_waiting(self.redis, self.keys))[:max_signals]
        taken = await super().coordinate(max_signals)
        for run_id in sorted({json.loads(signal)["run_id"] for signal in raw}):
            if await self.redis.hget(self.keys.run(run_id), "status") == "running":
                await self.redis.hincrby(self.keys.run(run_id), "counter", 1)
        return taken


class SkippingRecorderEngine(SteppedEngine):
    """A planted recorder bug: the entries of steps that succeeded are lost."""

    async def record(self) -> int:
        for shard in self.keys.all_shards():
            for entry_id, fields in await self.redis.xrange(shard.ledger):
                entry = json.loads(fields["l"])
                if entry["kind"] == "step" and entry["status"] == "succeeded":
                    await self.redis.xdel(shard.ledger, entry_id)
        return await super().record()


@pytest.fixture
def world(deployment: Deployment) -> Iterator[World]:
    with open_world(deployment) as opened:
        yield opened


@pytest.mark.parametrize(
    ("engine", "check"),
    # A run whose counter stays too high never ends: whichever check sees it first fails the history.
    [
        (DoubleCountingEngine, r"\[(counter_matches_in_flight|run_ended)\]"),
        (SkippingRecorderEngine, r"\[recorded_step\]"),
    ],
)
def test_the_state_machine_finds_a_planted_engine_bug(world: World, engine: type[SteppedEngine], check: str) -> None:
    sabotaged = type("Sabotaged", (EngineHistories,), {"engine_class": engine})
    # Found in generation; shrinking would only make the test slower.
    config = settings(BOUNDED, max_examples=30, phases=[Phase.explicit, Phase.generate])
    with pytest.raises(AssertionError, match=check):
        run_histories(world, sabotaged, config)
