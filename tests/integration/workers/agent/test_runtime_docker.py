"""The docker runtime for real: the fake agent program in a container through the Docker API (Podman here).

Needs ``AOB_TEST_DOCKER_URL`` and ``AOB_TEST_AGENT_IMAGE`` (``tests/containers/setup_podman.sh`` prints them);
without them every test here is skipped with the reason, and ``.ci/run`` says so loudly.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import docker
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from tests.integration.workers.agent.test_handler import (
    LEAKS,
    LLM_KEY,
    agent_deployment,
    archived,
    stored_lines,
    submit,
)
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.agent import AgentHandler

DOCKER_URL = os.environ.get("AOB_TEST_DOCKER_URL")
IMAGE = os.environ.get("AOB_TEST_AGENT_IMAGE", "localhost/aob-agent:test")
SUPPORT = Path(__file__).resolve().parents[3] / "support"
SKIP_REASON = (
    "NO CONTAINER ENGINE: AOB_TEST_DOCKER_URL is unset, so the docker runtime is NOT tested;"
    ' run `eval "$(tests/containers/setup_podman.sh)"` first'
)

pytestmark = [pytest.mark.container, pytest.mark.skipif(DOCKER_URL is None, reason=SKIP_REASON)]


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    engine = docker.DockerClient(base_url=DOCKER_URL)
    engine.ping()
    yield engine
    engine.close()


@pytest.fixture
async def engine(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tmp_path: Path
) -> AsyncIterator[Engine]:
    agent = agent_deployment(
        deployment,
        agent_runtime="docker",
        agent_docker_url=DOCKER_URL,
        agent_docker_image=IMAGE,
        agent_docker_command=("python3", "/fake/fake_agent.py"),
        agent_docker_mounts=(f"{SUPPORT}:/fake:ro", f"{tmp_path}:{tmp_path}"),
        agent_docker_memory="256m",
        agent_docker_cpus=0.5,
    )
    # The container's user (never root) looks for the gate file here.
    await asyncio.to_thread(tmp_path.chmod, 0o755)
    handler = AgentHandler(agent.worker(), pg_pool, redis)
    async with Engine(agent, redis, handlers=[handler], pool=pg_pool) as running:
        yield running
    handler.close()


def containers_of(client: docker.DockerClient, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"aob.run_id={run_id}"}))


async def test_the_program_runs_in_a_container_and_streams_live(
    engine: Engine,
    client: docker.DockerClient,
    redis: aioredis.Redis,
    keys: Keys,
    pg_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    script: dict[str, Any] = {"lines": 2, "echo_secrets": LLM_KEY, "gate": str(gate), "result": {"status": "succeeded"}}
    script["result"]["output"] = {"from": "container"}
    run_id = await submit(engine, script)

    async def streamed() -> bool:
        return any(entry["line"] == "model line 1" for entry in await stored_lines(redis, keys, run_id))

    await eventually(streamed, 30)
    running = containers_of(client, run_id)
    assert len(running) == 1
    attrs = running[0].attrs["HostConfig"]
    assert attrs["Memory"] == 256 * 1024 * 1024
    assert attrs["NanoCpus"] == 500_000_000
    assert attrs["NetworkMode"] == "none"
    assert attrs["ReadonlyRootfs"] is True
    assert running[0].attrs["Config"]["User"] == "65534:65534"
    assert not attrs["Privileged"]
    assert "PYTHONUNBUFFERED=1" in running[0].attrs["Config"]["Env"]
    assert not any("key" in env.lower() for env in running[0].attrs["Config"]["Env"])

    gate.touch()
    assert await engine.wait_ended(run_id, timeout_s=90) == "succeeded"
    assert await engine.output(run_id, "after") == {"from": "container"}
    text = (await archived(pg_pool, run_id))["text"]
    for content in (text, json.dumps(await engine.events(run_id))):
        for leak in LEAKS:
            assert leak not in content
    assert "the provider key is [REDACTED] ok" in text
    assert containers_of(client, run_id) == []


async def test_a_crash_in_the_container_fails_the_node_with_its_log(
    engine: Engine, client: docker.DockerClient, pg_pool: asyncpg.Pool
) -> None:
    run_id = await submit(engine, {"lines": 1, "stderr": "Traceback: container boom", "exit": 3, "result": None})
    assert await engine.wait_ended(run_id, timeout_s=90) == "failed"
    error = (await engine.node_states(run_id))["agent"]["error"]
    assert error["type"] == "crash" and "exit status 3" in error["message"]
    text = (await archived(pg_pool, run_id))["text"]
    assert "model line 0" in text and "Traceback: container boom" in text
    assert containers_of(client, run_id) == []


async def test_a_hanging_container_is_killed_at_its_deadline(
    engine: Engine, client: docker.DockerClient, pg_pool: asyncpg.Pool
) -> None:
    run_id = await submit(engine, {"lines": 1, "hang": True}, timeout_s=3)
    assert await engine.wait_ended(run_id, timeout_s=90) == "failed"
    assert (await engine.node_states(run_id))["agent"]["error"]["type"] == "timeout"
    assert "model line 0" in (await archived(pg_pool, run_id))["text"]
    assert containers_of(client, run_id) == []
