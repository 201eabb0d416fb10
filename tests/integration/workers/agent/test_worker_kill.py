"""A SIGKILL of the agent worker mid-node (issue 13): the node ends once, its log ids keep increasing across the
redelivery, one ``node_logs`` row for the attempt, and the tenant's token budget is charged once."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from tests.support.processes import ServiceProcess, chaos_env
from workers.agent._budget import budget_day

FAKE_AGENT = Path(__file__).resolve().parents[3] / "support" / "fake_agent.py"


def kill_tree(process: ServiceProcess) -> None:
    """SIGKILL the worker and the agent program it started, as a crashed machine would lose both."""
    assert process.proc is not None
    children = psutil.Process(process.proc.pid).children(recursive=True)
    process.kill()
    for child in children:
        child.kill()


@pytest.mark.timeout(120)
async def test_a_killed_agent_worker_ends_the_node_once(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    env = chaos_env(
        deployment,
        AOB_AGENT_PROCESS_COMMAND=f"{sys.executable},{FAKE_AGENT}",
        AOB_LLM_API_KEY="llm-key-for-the-fake",
        AOB_LLM_BASE_URL="http://127.0.0.1:9/v1",
    )
    worker = ServiceProcess(["worker", "agent"], env, tmp_path / "worker.log")
    script = {"lines": 3, "gate": str(gate)}
    definition = {
        "name": "killed",
        "nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "{{ inputs.script | tojson }}"}}],
        "edges": [],
    }
    async with Engine(deployment, redis, pool=pg_pool) as engine:
        worker.start()
        try:
            run_id = await engine.submit(definition, {"script": script})
            logs = engine.keys.logs(run_id, "agent")

            async def lines_stored() -> list[str]:
                ids = [entry_id for entry_id, _ in await redis.xrange(logs)]
                assert len(ids) >= 4, worker.log_tail()
                return ids

            first_ids = await eventually(lines_stored, timeout_s=30)
            kill_tree(worker)
            worker.start()
            # The token comes back to the new worker after the visibility timeout; this delivery may finish.
            await eventually(lambda: _more_lines(redis, logs, len(first_ids)), timeout_s=30)
            gate.touch()
            assert await engine.wait_ended(run_id, timeout_s=30) == "succeeded"
        finally:
            worker.stop()
            gate.touch()

        ids = [entry_id for entry_id, _ in await redis.xrange(logs)]
        assert ids[: len(first_ids)] == first_ids
        sequence = [int(entry_id.split("-")[1]) for entry_id in ids]
        assert sequence == sorted(set(sequence)) and all(entry_id.startswith("1-") for entry_id in ids)
        assert (await engine.event_types(run_id, "agent")).count("node_succeeded") == 1

        async def archived() -> int:
            count: int = await pg_pool.fetchval("SELECT count(*) FROM node_logs WHERE run_id = $1", run_id)
            return count

        assert await eventually(archived) == 1
        used = await redis.get(engine.keys.token_budget("tenant-test", budget_day()))
        assert int(used or 0) == 0  # only model calls the worker makes are charged; the fake makes none


async def _more_lines(redis: aioredis.Redis, logs: str, before: int) -> bool:
    return len(await redis.xrange(logs)) > before
