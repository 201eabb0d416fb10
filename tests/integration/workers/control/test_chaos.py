"""Chaos with loop and map nodes: coordinators, the built-in worker and the control worker SIGKILLed at random
while runs whose DAG holds a map and a loop (each running child runs) execute."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.coordinator.test_chaos import twenty_node_dag
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.processes import ServiceProcess, chaos_env

RUNS = 20
CHAOS_S = 8.0
ITEMS = 3
ITERATIONS = 3


def dag_with_loop_and_map() -> dict[str, Any]:
    """The chaos DAG plus a map (3 items, 2 at a time, each child delayed) and a 3-iteration loop on the way to
    ``end``."""
    dag = twenty_node_dag()
    double = {
        "name": "double",
        "nodes": [
            {"id": "pause", "type": "delay", "config": {"seconds": 0.2}},
            {"id": "t", "type": "transform", "config": {"output": "{{ inputs.x * 2 }}"}},
        ],
        "edges": [{"from": "pause", "to": "t"}],
        "outputs": {"y": "{{ nodes.t.output }}"},
    }
    count = {"name": "count", "nodes": [{"id": "t", "type": "transform", "config": {"output": "{{ inputs.i }}"}}],
             "outputs": {"i": "{{ nodes.t.output }}"}}  # fmt: skip
    dag["nodes"] += [
        {"id": "each", "type": "map", "config": {"items": "{{ [inputs.n, inputs.n + 1, inputs.n + 2] }}",
                                                 "body": double, "concurrency": 2, "inputs": {"x": "{{ item }}"}}},
        {"id": "again", "type": "loop", "config": {"body": count, "inputs": {"i": "{{ loop.index }}"},
                                                   "until": f"output.i >= {ITERATIONS - 1}", "max_iterations": 5}},
    ]  # fmt: skip
    dag["edges"] += [
        {"from": "start", "to": "each"},
        {"from": "start", "to": "again"},
        {"from": "each", "to": "end"},
        {"from": "again", "to": "end"},
    ]
    return dag


@pytest.mark.timeout(180)
async def test_loops_and_maps_survive_killed_services(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = chaos_env(
        deployment,
        AOB_CONTROL_RECLAIM_IDLE_S="1.5",
        AOB_CONTROL_SWEEP_INTERVAL_S="0.5",
        AOB_CONTROL_BLOCK_MS="200",
        # Child runs count against run-start quotas; this test is about surviving kills, not about those.
        AOB_RATE_RUNS_NO_AGENTS_PER_MIN="1000000",
    )
    services = {
        "coord-a": ServiceProcess(["coordinator"], env, tmp_path / "coord-a.log"),
        "coord-b": ServiceProcess(["coordinator"], env, tmp_path / "coord-b.log"),
        "worker": ServiceProcess(["worker", "builtin"], env, tmp_path / "worker.log"),
        "control": ServiceProcess(["worker", "control"], env, tmp_path / "control.log"),
    }
    # The test only submits and reads: the engine object's own coordinators and workers are never started.
    engine = Engine(deployment, redis)
    dag = dag_with_loop_and_map()
    rng = random.Random(11)
    for service in services.values():
        service.start()
    try:
        run_ids: list[str] = []
        loop = asyncio.get_running_loop()
        chaos_until = loop.time() + CHAOS_S
        kills: dict[str, int] = dict.fromkeys(services, 0)
        while loop.time() < chaos_until or len(run_ids) < RUNS:
            run_ids += [await engine.submit(dag, {"n": len(run_ids) + i}) for i in range(min(3, RUNS - len(run_ids)))]
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            name = rng.choice(sorted(services))
            services[name].kill()
            kills[name] += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            services[name].start()
        assert sum(kills.values()) >= 6 and kills["control"] >= 1, kills

        async def all_ended() -> bool:
            statuses = [await redis.hget(engine.keys.run(r), "status") for r in run_ids]
            return all(s in ("succeeded", "failed", "cancelled", "timed_out") for s in statuses)

        try:
            await eventually(all_ended, timeout_s=90, interval_s=0.2)
        except AssertionError:
            logs = "\n".join(f"--- {name}\n{s.log_tail()}" for name, s in services.items())
            raise AssertionError(f"runs did not end; service logs:\n{logs}") from None

        node_ids = {n["id"] for n in dag["nodes"]}
        children: list[str] = []
        for n, run_id in enumerate(run_ids):
            assert (await engine.run_hash(run_id))["status"] == "succeeded", run_id
            assert await engine.statuses(run_id) == dict.fromkeys(node_ids, "succeeded")
            assert await engine.output(run_id, "end") == "done"
            expected = [{"y": 2 * (n + i)} for i in range(ITEMS)]
            assert await engine.output(run_id, "each") == {"results": expected, "errors": []}, run_id
            assert await engine.output(run_id, "again") == {"output": {"i": ITERATIONS - 1}, "iterations": ITERATIONS}
            events = await engine.events(run_id)
            for node_id, count in (("each", ITEMS), ("again", ITERATIONS)):
                for kind in ("child_run_started", "child_run_ended"):
                    assert sum(1 for e in events if e["type"] == kind and e["node_id"] == node_id) == count
            run_children = sorted(await redis.smembers(engine.keys.child_runs(run_id)))
            assert len(run_children) == ITEMS + ITERATIONS
            children += run_children
        for child in children:
            assert (await engine.run_hash(child))["status"] == "succeeded", child

        async def recorded() -> bool:
            rows = await pg_pool.fetch(
                "SELECT id, status, parent_run_id FROM runs WHERE id = ANY($1::text[])", run_ids + children
            )
            return len(rows) == len(run_ids) + len(children) and all(r["status"] == "succeeded" for r in rows)

        await eventually(recorded, timeout_s=30, interval_s=0.2)
        per_node = await pg_pool.fetch(
            "SELECT run_id, node_id, count(*) AS n FROM run_steps WHERE run_id = ANY($1::text[]) "
            "GROUP BY run_id, node_id HAVING count(*) > 1",
            run_ids + children,
        )
        assert per_node == []
    finally:
        for service in services.values():
            service.stop()
