"""Chaos: coordinators and a worker SIGKILLed at random moments while 50 runs of a 20-node DAG execute."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.processes import ServiceProcess, chaos_env

RUNS = 50
CHAOS_S = 8.0


def twenty_node_dag() -> dict[str, Any]:
    """start -> 4 layers of 4 nodes (each fed by two nodes of the layer before) -> 2 merges -> end."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "transform", "config": {"output": "{{ inputs.n }}"}}]
    edges: list[dict[str, str]] = []
    previous = ["start"]
    for layer in range(4):
        current = []
        for i in range(4):
            node_id = f"l{layer}n{i}"
            if (layer + i) % 3 == 0:
                nodes.append({"id": node_id, "type": "delay", "config": {"seconds": 0.3}})
            else:
                nodes.append({"id": node_id, "type": "transform", "config": {"output": f"{{{{ inputs.n + {i} }}}}"}})
            for src in {previous[i % len(previous)], previous[(i + 1) % len(previous)]}:
                edges.append({"from": src, "to": node_id})
            current.append(node_id)
        previous = current
    nodes += [{"id": "m0", "type": "noop", "config": {}}, {"id": "m1", "type": "noop", "config": {}}]
    edges += [{"from": n, "to": "m0"} for n in previous[:2]] + [{"from": n, "to": "m1"} for n in previous[2:]]
    nodes.append({"id": "end", "type": "transform", "config": {"output": "done"}})
    edges += [{"from": "m0", "to": "end"}, {"from": "m1", "to": "end"}]
    return {"name": "chaos", "nodes": nodes, "edges": edges}


@pytest.mark.timeout(180)
async def test_runs_survive_killed_coordinators_and_workers(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    env = chaos_env(deployment)
    services = {
        "coord-a": ServiceProcess(["coordinator"], env, tmp_path / "coord-a.log"),
        "coord-b": ServiceProcess(["coordinator"], env, tmp_path / "coord-b.log"),
        "worker": ServiceProcess(["worker", "builtin"], env, tmp_path / "worker.log"),
    }
    # The test only submits and reads: the engine object's own coordinators and workers are never started.
    engine = Engine(deployment, redis)
    dag = twenty_node_dag()
    rng = random.Random(7)
    for service in services.values():
        service.start()
    try:
        # Runs are submitted throughout the chaos so that every phase of a run meets some kill.
        run_ids: list[str] = []
        loop = asyncio.get_running_loop()
        chaos_until = loop.time() + CHAOS_S
        kills = 0
        while loop.time() < chaos_until or len(run_ids) < RUNS:
            run_ids += [await engine.submit(dag, {"n": len(run_ids) + i}) for i in range(min(5, RUNS - len(run_ids)))]
            await asyncio.sleep(rng.uniform(0.3, 1.0))
            victim = services[rng.choice(sorted(services))]
            victim.kill()
            kills += 1
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            victim.start()
        assert kills >= 6
        assert len(run_ids) == RUNS

        async def all_ended() -> bool:
            statuses = [await redis.hget(engine.keys.run(r), "status") for r in run_ids]
            return all(s in ("succeeded", "failed", "cancelled", "timed_out") for s in statuses)

        try:
            await eventually(all_ended, timeout_s=90, interval_s=0.2)
        except AssertionError:
            logs = "\n".join(f"--- {name}\n{s.log_tail()}" for name, s in services.items())
            raise AssertionError(f"runs did not end; service logs:\n{logs}") from None

        node_ids = {n["id"] for n in dag["nodes"]}
        for run_id in run_ids:
            assert (await engine.run_hash(run_id))["status"] == "succeeded", run_id
            assert await engine.statuses(run_id) == dict.fromkeys(node_ids, "succeeded")
            succeeded = [e["node_id"] for e in await engine.events(run_id) if e["type"] == "node_succeeded"]
            assert sorted(succeeded) == sorted(node_ids), run_id
            assert await engine.output(run_id, "end") == "done"

        async def recorded() -> bool:
            rows = await pg_pool.fetch("SELECT id, status FROM runs WHERE id = ANY($1::text[])", run_ids)
            steps = await pg_pool.fetchval(
                "SELECT count(*) FROM run_steps WHERE run_id = ANY($1::text[]) AND status = 'succeeded'", run_ids
            )
            return len(rows) == RUNS and all(r["status"] == "succeeded" for r in rows) and steps == RUNS * 20

        await eventually(recorded, timeout_s=30, interval_s=0.2)
        per_node = await pg_pool.fetch(
            "SELECT run_id, node_id, count(*) AS n FROM run_steps WHERE run_id = ANY($1::text[]) "
            "GROUP BY run_id, node_id HAVING count(*) > 1",
            run_ids,
        )
        assert per_node == []
    finally:
        for service in services.values():
            service.stop()
