"""The engine on a Redis Cluster: every script and transaction stays in one slot, runs spread over every primary."""

from __future__ import annotations

import asyncpg
import redis.asyncio as aioredis
from redis.crc import key_slot

from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.redis_cluster import LocalRedisCluster

RUNS = 48


def diamond() -> dict[str, object]:
    nodes = [{"id": n, "type": "transform", "config": {"output": {"n": n}}} for n in ("a", "b", "c")]
    nodes.append({"id": "wait", "type": "delay", "config": {"seconds": 0.05}})
    edges = [{"from": "a", "to": "b"}, {"from": "a", "to": "wait"}, {"from": "b", "to": "c"}]
    edges.append({"from": "wait", "to": "c"})
    return {"name": "diamond", "nodes": nodes, "edges": edges}


async def test_runs_spread_over_every_primary_and_all_succeed(
    cluster_deployment: Deployment,
    cluster_redis: aioredis.Redis,
    redis_cluster: LocalRedisCluster,
    pg_pool: asyncpg.Pool,
) -> None:
    async with Engine(cluster_deployment, cluster_redis, pool=pg_pool, coordinators=2) as engine:
        run_ids = [await engine.submit(diamond(), recorded=True) for _ in range(RUNS)]
        statuses = [await engine.wait_ended(run_id, timeout_s=60) for run_id in run_ids]
        assert statuses == ["succeeded"] * RUNS
        assert {(await engine.statuses(run_id))["c"] for run_id in run_ids} == {"succeeded"}

        async def recorded() -> bool:
            rows = await pg_pool.fetch("SELECT status FROM runs WHERE id = ANY($1::text[])", run_ids)
            return [row["status"] for row in rows] == ["succeeded"] * RUNS

        await eventually(recorded, timeout_s=30)
    primaries = {redis_cluster.primary_of_slot(key_slot(engine.keys.run(run_id).encode())) for run_id in run_ids}
    assert primaries == set(redis_cluster.primaries())
