"""Engine invariants over random histories (issue 13): runs of random DAGs are started, their tokens worked and
their signals coordinated in random interleavings, and they are patched, cancelled and resumed at random moments.

The engine is the real one (Lua scripts, coordinator decisions, worker runtime, recorder) on the real Redis and
Postgres, driven one step at a time (``tests.support.stepped``), so every history replays exactly and shrinks.
``AOB_PROPERTY_EXAMPLES=n`` runs ``n`` random histories instead of the bounded, fixed set CI runs.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from common.errors import ValidationFailed
from common.runs.cancel import cancel_run
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.patch import patch_run
from common.runs.resume import resume_run
from common.workflow.compiler import compile_definition
from tests.support import invariants
from tests.support.deployment import Deployment
from tests.support.random_dags import PatchPlan, dags, expected_outcome, patch_plans
from tests.support.scripted import ScriptedHandler, scripted_type
from tests.support.stepped import SteppedEngine, World, delete_keys, open_world

EXAMPLES = int(os.environ.get("AOB_PROPERTY_EXAMPLES", "0"))
BOUNDED = settings(
    max_examples=120,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
LONG = settings(BOUNDED, max_examples=max(1, EXAMPLES), stateful_step_count=50, derandomize=False)


@dataclass
class RunModel:
    """What the test knows of a run: its current definition and IR version, and whether it was cancelled or
    resumed (then only the invariants, not the reference outcome, say how it must end)."""

    definition: dict[str, Any]
    ir_version: int = 1
    disturbed: bool = False
    added: int = 0

    def new_ids(self, count: int) -> list[str]:
        self.added += count
        return [f"p{i}" for i in range(self.added - count, self.added)]

    @property
    def node_ids(self) -> list[str]:
        return [node["id"] for node in self.definition["nodes"]]


class EngineHistories(RuleBasedStateMachine):
    """One random history of the engine; ``checks`` are the invariants that must hold throughout."""

    world: ClassVar[World]
    engine_class: ClassVar[type[SteppedEngine]] = SteppedEngine
    checks: ClassVar[frozenset[str]] = invariants.CHECKS - invariants.KNOWN_OPEN.keys()

    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.prefix = f"{self.world.deployment.key_prefix}{uuid.uuid4().hex[:8]}:"
        deployment = self.world.deployment.replace(key_prefix=self.prefix)
        self.engine = self.engine_class(
            deployment, self.world.redis, handlers=[ScriptedHandler()], pool=self.world.pool
        )
        self.world.do(self.engine.__aenter__())
        self.models: dict[str, RunModel] = {}

    # --- steps -------------------------------------------------------------------------------------------------

    @rule(target=runs, dag=dags())
    def start(self, dag: dict[str, Any]) -> str:
        run_id = self.world.do(self.engine.submit(dag))
        self.models[run_id] = RunModel(dag)
        return run_id

    @rule(node_type=st.sampled_from(["scripted", "builtin"]), tokens=st.integers(1, 3))
    def work(self, node_type: str, tokens: int) -> None:
        self.world.do(self.engine.work(node_type, tokens))

    @rule(signals=st.integers(1, 3))
    def coordinate(self, signals: int) -> None:
        self.world.do(self.engine.coordinate(signals))

    @rule(time_passes=st.booleans())
    def tick(self, time_passes: bool) -> None:
        self.world.do(self.engine.tick(time_passes=time_passes))

    @rule(pick=st.integers(0, 50))
    def redeliver(self, pick: int) -> None:
        self.world.do(self.engine.redeliver(pick))

    @rule(pick=st.integers(0, 50))
    def replay_signal(self, pick: int) -> None:
        self.world.do(self.engine.replay_signal(pick))

    @rule(run=runs, plan=patch_plans())
    def patch(self, run: str, plan: PatchPlan) -> None:
        model = self.models[run]
        definition, touched = plan.apply(model.definition, model.new_ids(len(plan.new_nodes)))
        if plan.kind != "valid":
            with pytest.raises(ValidationFailed):
                compile_definition(definition)
            return
        ir = compile_definition(definition, version=model.ir_version + 1).ir
        before = self.world.do(invariants.read_run(self.engine, run))
        started = {n: before.nodes[n]["status"] for n in touched if n in before.nodes}
        started = {n: s for n, s in started.items() if s != "pending"}
        expected = "ended" if before.status in TERMINAL_RUN_STATUSES else "refused" if started else "ok"
        outcome = self.world.do(
            patch_run(self.engine.scripts, run, ir, expected_version=model.ir_version, author="property")
        )
        assert outcome.status == expected, f"patch touching {touched} (started: {started}): {outcome}"
        if outcome.status == "ok":
            model.definition, model.ir_version = definition, model.ir_version + 1
        assert int(self.world.do(self.engine.run_hash(run))["ir_version"]) == model.ir_version

    @rule(run=runs)
    def cancel(self, run: str) -> None:
        before = self.world.do(self.engine.run_hash(run))["status"]
        verdict = self.world.do(cancel_run(self.engine.scripts, run))
        assert verdict == ("ended" if before in TERMINAL_RUN_STATUSES else "ok")
        after = self.world.do(invariants.read_run(self.engine, run))
        assert after.status in TERMINAL_RUN_STATUSES
        if verdict == "ok":
            self.models[run].disturbed = True
            self._hold(invariants.nothing_in_flight(after))

    @rule(run=runs, pick=st.none() | st.integers(0, 11))
    def resume(self, run: str, pick: int | None) -> None:
        model = self.models[run]
        from_node = None if pick is None else model.node_ids[pick % len(model.node_ids)]
        before = self.world.do(self.engine.run_hash(run))["status"]
        outcome = self.world.do(resume_run(self.engine.scripts, run, from_node=from_node))
        assert outcome.status == ("ok" if before in TERMINAL_RUN_STATUSES else "not_ended"), outcome
        model.disturbed |= outcome.status == "ok"

    @rule(run=runs, pick=st.none() | st.integers(0, 11))
    def cancel_and_resume(self, run: str, pick: int | None) -> None:
        """What a user does to restart a run from a node: whatever it was doing is cancelled, then it resumes."""
        self.cancel(run)
        self.resume(run, pick)

    @rule()
    def settle(self) -> None:
        """Let time pass: every component takes steps until none has anything to do; then every run has ended."""
        self.world.do(self.engine.settle())
        self.world.do(self._check_ended())

    @rule()
    def record(self) -> None:
        """The recorder drains the ledger; Postgres then agrees with Redis about every run."""
        self.world.do(self.engine.record())
        self.world.do(self._check_recorded())

    # --- invariants --------------------------------------------------------------------------------------------

    @invariant()
    def always(self) -> None:
        found = invariants.executions(self.engine.executions, self.engine.redelivered)
        found += invariants.delays_waited(self.engine.executions, self.engine.delayed)
        for run_id in self.models:
            state = self.world.do(invariants.read_run(self.engine, run_id))
            found += invariants.final_events_per_epoch(state)
            found += invariants.events_match_states(state)
            found += invariants.outputs_kept(state)
        found += self.world.do(invariants.counters(self.engine, self.models))
        self._hold(found)

    async def _check_ended(self) -> None:
        found: list[invariants.Violation] = []
        for run_id, model in self.models.items():
            state = await invariants.read_run(self.engine, run_id)
            found += invariants.ended_run(state)
            if not model.disturbed:
                expected = expected_outcome(model.definition)
                found += invariants.outcome(state, expected.status, expected.nodes)
        self._hold(found)

    async def _check_recorded(self) -> None:
        found: list[invariants.Violation] = []
        for run_id in self.models:
            found += await invariants.recorded(self.world.pool, await invariants.read_run(self.engine, run_id))
        self._hold(found)

    def _hold(self, found: list[invariants.Violation]) -> None:
        broken = [str(v) for v in found if v.check in self.checks]
        if broken:
            raise AssertionError("invariants broken:\n" + "\n".join(broken))

    def teardown(self) -> None:
        # Hypothesis calls this in a `finally`: after a failed step only clean up, so that failure is the one shown.
        try:
            if sys.exc_info()[0] is None:
                self.settle()
                self.record()
        finally:
            self.world.do(delete_keys(self.world.redis, self.prefix))


@pytest.fixture
def world(deployment: Deployment) -> Iterator[World]:
    with open_world(deployment) as opened, scripted_type():
        yield opened


def run_histories(world: World, machine: type[EngineHistories], config: settings) -> None:
    bound = type(machine.__name__, (machine,), {"world": world})
    run_state_machine_as_test(bound, settings=config)


@pytest.mark.timeout(600)
def test_engine_invariants_hold_over_random_histories(world: World) -> None:
    run_histories(world, EngineHistories, LONG if EXAMPLES else BOUNDED)
