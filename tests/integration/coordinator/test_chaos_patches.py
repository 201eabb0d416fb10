"""Chaos with runtime patches and resume: two coordinators and two workers SIGKILLed and restarted at random while
runs are patched (nodes added mid-run) and some are cancelled and resumed; the engine invariants hold at the end.

The workers serve the built-in steps and the ``scripted`` test type (``tests.support.chaos_worker``), recording each
execution in Redis. Every scripted node succeeds within its retries in any life of the run, so every run, resumed
or not, must end as the reference semantics of its final definition say (``tests.support.random_dags``).
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.runs.cancel import cancel_run
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.patch import patch_run
from common.runs.resume import resume_run
from common.workflow.compiler import compile_definition
from tests.support import invariants
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.executions import executions_key, load_executions
from tests.support.processes import ServiceProcess, chaos_env
from tests.support.random_dags import CONDITION, expected_outcome
from tests.support.scripted import scripted_type
from tests.support.shards import ledger_entries

# AOB_CHAOS_RUNS=n runs a longer chaos: the kills go on while runs are submitted, five every half second or so.
RUNS = int(os.environ.get("AOB_CHAOS_RUNS", "50"))
CHAOS_S = RUNS / 5
# Tokens of a killed worker are executed again by design (at least once); every other check holds.
CHECKS = invariants.CHECKS - invariants.KNOWN_OPEN.keys() - {"token_executed_once"}


def scripted(node_id: str, rng: random.Random) -> dict[str, Any]:
    """Takes a moment, and fails its first attempt now and then: it succeeds on a retry, and in any later life."""
    config = {
        "sleep_s": rng.choice([0.05, 0.1, 0.3]),
        "fail_attempts": rng.choice([0, 0, 1]),
        "output": rng.randint(0, 3),
    }
    return {"id": node_id, "type": "scripted", "config": config, "retry": {"max_attempts": 3, "backoff_s": 0.1}}


def chaos_dag(rng: random.Random) -> dict[str, Any]:
    """A fan-out and fan-in of scripted nodes: some edges conditional, one join `any`, a transform at the end."""
    width = rng.randint(2, 4)
    nodes = [scripted("start", rng), *(scripted(f"b{i}", rng) for i in range(width))]
    nodes.append({"id": "join", "type": "noop", "config": {}, "join": rng.choice(["all", "any"])})
    nodes.append({"id": "end", "type": "transform", "config": {"output": "done"}})
    edges: list[dict[str, Any]] = []
    for i in range(width):
        edges.append({"from": "start", "to": f"b{i}"})
        edges.append({"from": f"b{i}", "to": "join"} | ({"when": CONDITION} if i and rng.random() < 0.4 else {}))
    edges.append({"from": "join", "to": "end"})
    return {"name": "chaos-patches", "nodes": nodes, "edges": edges}


@dataclass
class ChaosRun:
    definition: dict[str, Any]
    ir_version: int = 1
    patches: int = 0


async def add_node(engine: Engine, run_id: str, run: ChaosRun, rng: random.Random) -> str:
    """Patch a node in after a random existing node (an edge into a new node touches no existing one): the patch is
    applied unless the run has ended meanwhile."""
    source = rng.choice(run.definition["nodes"])["id"]
    node = scripted(f"x{run.patches}", rng)
    definition = dict(run.definition)
    definition["nodes"] = [*definition["nodes"], node]
    definition["edges"] = [*definition["edges"], {"from": source, "to": node["id"]}]
    ir = compile_definition(definition, version=run.ir_version + 1).ir
    outcome = await patch_run(engine.scripts, run_id, ir, expected_version=run.ir_version, author="chaos")
    if outcome.status == "ok":
        run.definition, run.ir_version, run.patches = definition, run.ir_version + 1, run.patches + 1
    else:
        status = await engine.redis.hget(engine.keys.run(run_id), "status")
        assert outcome.status == "ended" and status in TERMINAL_RUN_STATUSES, (outcome, status)
    return outcome.status


async def cancel_and_resume(engine: Engine, run_id: str, rng: random.Random) -> None:
    await cancel_run(engine.scripts, run_id)
    await asyncio.sleep(rng.uniform(0.0, 0.3))
    outcome = await resume_run(engine.scripts, run_id)
    assert outcome.status == "ok", outcome


@pytest.mark.timeout(240 + 2 * CHAOS_S)
async def test_patched_and_resumed_runs_survive_killed_coordinators_and_workers(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = chaos_env(deployment)
    worker = ["-m", "tests.support.chaos_worker"]
    services = {
        "coord-a": ServiceProcess(["coordinator"], env, tmp_path / "coord-a.log"),
        "coord-b": ServiceProcess(["coordinator"], env, tmp_path / "coord-b.log"),
        "worker-a": ServiceProcess(worker, env, tmp_path / "worker-a.log", program=sys.executable),
        "worker-b": ServiceProcess(worker, env, tmp_path / "worker-b.log", program=sys.executable),
    }
    # The test submits, patches, cancels, resumes and reads: the engine object's own parts are never started.
    engine = Engine(deployment, redis)
    rng = random.Random(13)
    runs: dict[str, ChaosRun] = {}
    actions: list[str] = []
    for service in services.values():
        service.start()
    try:
        with scripted_type():
            loop = asyncio.get_running_loop()
            chaos_until = loop.time() + CHAOS_S
            # A slow machine gets through fewer rounds in the time: the chaos goes on until enough patches and
            # resumes happened (within a hard limit, so a broken engine fails the assertion below, not the timeout).
            hard_stop = chaos_until + 60

            def exercised() -> bool:
                return actions.count("patch ok") >= 20 and actions.count("cancel+resume") >= 10

            while (loop.time() < chaos_until or len(runs) < RUNS or not exercised()) and loop.time() < hard_stop:
                # Runs end sooner on a faster engine, and a patch lands only on a live run: new runs keep coming
                # until enough patches and resumes happened.
                for _ in range(5 if not exercised() else min(5, RUNS - len(runs))):
                    definition = chaos_dag(rng)
                    runs[await engine.submit(definition)] = ChaosRun(definition)
                for run_id in rng.sample(sorted(runs), k=min(4, len(runs))):
                    if rng.random() < 0.75:
                        actions.append("patch " + await add_node(engine, run_id, runs[run_id], rng))
                    else:
                        await cancel_and_resume(engine, run_id, rng)
                        actions.append("cancel+resume")
                await asyncio.sleep(rng.uniform(0.2, 0.6))
                victim = services[rng.choice(sorted(services))]
                victim.kill()
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                victim.start()
        assert exercised(), actions

        async def all_ended() -> bool:
            statuses = [await redis.hget(engine.keys.run(r), "status") for r in runs]
            return all(s in TERMINAL_RUN_STATUSES for s in statuses)

        try:
            await eventually(all_ended, timeout_s=60, interval_s=0.2)
        except AssertionError:
            logs = "\n".join(f"--- {name}\n{s.log_tail()}" for name, s in services.items())
            raise AssertionError(f"runs did not end; service logs:\n{logs}") from None

        found: list[invariants.Violation] = []
        for run_id, run in runs.items():
            state = await invariants.read_run(engine, run_id)
            found += invariants.ended_run(state) + invariants.final_events_per_epoch(state)
            found += invariants.events_match_states(state) + invariants.outputs_kept(state)
            expected = expected_outcome(run.definition)
            found += invariants.outcome(state, expected.status, expected.nodes)
        found += invariants.executions(await load_executions(redis, executions_key(deployment.key_prefix)))

        async def recorded() -> bool:
            # The coordinators' recorders drain the ledger; then Postgres says what Redis says.
            assert await ledger_entries(redis, engine.keys) == [], "the ledger is not drained yet"
            mismatches = []
            for run_id in runs:
                mismatches += await invariants.recorded(pg_pool, await invariants.read_run(engine, run_id))
            broken = [str(v) for v in mismatches if v.check in CHECKS]
            assert broken == [], "Postgres disagrees with Redis:\n" + "\n".join(broken)
            return True

        await eventually(recorded, timeout_s=30, interval_s=0.5)
        broken = [str(v) for v in found if v.check in CHECKS]
        assert broken == [], "invariants broken:\n" + "\n".join(broken)
    finally:
        for service in services.values():
            service.stop()
