"""Agent sandboxes hold no ambient authority: no credentials, no readable worker environment, no network, no
writable root, and Kubernetes Jobs that are non-root, read-only, seccomp-confined, without egress or leftover Secrets.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from devstack.llm_scripted import ScriptedLLM
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from workers.agent import AgentHandler

SUPPORT = Path(__file__).resolve().parents[1] / "support"
FAKE_AGENT = SUPPORT / "fake_agent.py"
LLM_KEY = "sandbox-llm-key-0a1b2c3d4e5f"
DOCKER_URL = os.environ.get("AOB_TEST_DOCKER_URL")
IMAGE = os.environ.get("AOB_TEST_AGENT_IMAGE", "localhost/aob-agent:test")


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, int]]:
    """A TCP server on the worker's loopback that an agent program must not reach."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    async with server:
        yield "127.0.0.1", server.sockets[0].getsockname()[1]


async def probe_output(engine: Engine, probe: dict[str, Any]) -> dict[str, Any]:
    definition = {"nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "{{ inputs.script | tojson }}"}}]}
    run_id = await engine.submit(definition | {"edges": []}, {"script": {"probe": probe}})
    assert await engine.wait_ended(run_id, timeout_s=30) == "succeeded", (await engine.node_states(run_id))[
        "agent"
    ].get("error")
    output: dict[str, Any] = await engine.output(run_id, "agent")
    return output


async def test_the_process_agent_gets_no_credentials_worker_environment_or_network(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    listener: tuple[str, int],
) -> None:
    agent = deployment.replace(
        agent_process_command=(sys.executable, str(FAKE_AGENT)),
        llm_api_key=SecretStr(LLM_KEY),
        agent_timeout_grace_s=0.5,
    )
    handler = AgentHandler(agent.worker(), pg_pool, redis)
    async with Engine(agent, redis, handlers=[handler], pool=pg_pool) as engine:
        seen = await probe_output(engine, {"tcp": list(listener)})
    # The worker's environment (database URLs, provider keys in a deployment) is not readable through /proc.
    assert "error" in seen["parent_environ"], seen["parent_environ"]
    assert not {"llm", "api", "http"} & set(seen["job_fields"]), seen["job_fields"]
    assert LLM_KEY not in seen["job"] and "aob_agent_" not in seen["job"]
    assert set(seen["environ"]) <= {"PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "PYTHONUNBUFFERED"}
    if os.geteuid() == 0:
        # A root worker runs agents without any capability, in a network namespace of their own.
        assert int(seen["capabilities"]["ok"], 16) == 0, seen["capabilities"]
        assert "error" in seen["tcp"], seen["tcp"]
        assert seen["interfaces"]["ok"] == ["lo"]


async def test_model_calls_are_made_by_the_worker_with_the_key_the_program_never_sees(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    steps = [
        {"tool_calls": [{"name": "http_request", "arguments": {"method": "GET", "url": "http://127.0.0.1:6379/"}}]},
        {"tool_calls": [{"name": "finish", "arguments": {"result": "done"}}]},
    ]
    async with ScriptedLLM(steps) as llm:
        agent = deployment.replace(llm_base_url=llm.base_url, llm_api_key=SecretStr(LLM_KEY))
        handler = AgentHandler(agent.worker(), pg_pool, redis)
        async with Engine(agent, redis, handlers=[handler], pool=pg_pool) as engine:
            definition = {"nodes": [{"id": "agent", "type": "agent", "config": {"prompt": "go"}}], "edges": []}
            run_id = await engine.submit(definition)
            assert await engine.wait_ended(run_id, timeout_s=30) == "succeeded", (await engine.node_states(run_id))[
                "agent"
            ].get("error")
    first = llm.requests[0]
    assert first["headers"]["authorization"] == f"Bearer {LLM_KEY}"
    # The program asked for Redis's port on loopback: the worker's SSRF guard refused it.
    tool_answer = json.loads(llm.requests[1]["body"]["messages"][-1]["content"])
    assert tool_answer["error"]["type"] == "ssrf_blocked", tool_answer


@pytest.mark.container
@pytest.mark.skipif(DOCKER_URL is None, reason="NO CONTAINER ENGINE: AOB_TEST_DOCKER_URL is unset")
async def test_the_docker_agent_has_no_network_no_root_and_a_read_only_root(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    agent = deployment.replace(
        agent_runtime="docker",
        agent_docker_url=DOCKER_URL,
        agent_docker_image=IMAGE,
        agent_docker_command=("python3", "/fake/fake_agent.py"),
        agent_docker_mounts=(f"{SUPPORT}:/fake:ro",),
        agent_timeout_grace_s=0.5,
    )
    handler = AgentHandler(agent.worker(), pg_pool, redis)
    try:
        async with Engine(agent, redis, handlers=[handler], pool=pg_pool) as engine:
            seen = await probe_output(engine, {"tcp": ["1.1.1.1", 53]})
    finally:
        handler.close()
    assert seen["uid"] != 0
    assert "error" in seen["write_root"], seen["write_root"]
    assert "error" in seen["tcp"], seen["tcp"]
    assert seen["interfaces"]["ok"] == ["lo"]
    assert not {"llm", "api", "http"} & set(seen["job_fields"])


def kubernetes_manifests() -> list[dict[str, Any]]:
    """What the kubernetes runtime asks the API to create for one execution, by its fake API's record."""
    from tests.unit.workers.agent.test_runtime_kubernetes import JOB, FakeApi, pod, runtime

    api = FakeApi([pod("Running")], [], pod("Succeeded", exit_code=0))
    rt = runtime(api)
    job = rt.job_manifest(JOB, "aob-agent-x")
    made = [job]
    if hasattr(rt, "network_policy_manifest"):
        made.append(rt.network_policy_manifest(JOB, "aob-agent-x", "job-uid-1"))
    if hasattr(rt, "secret_manifest"):
        made.append(rt.secret_manifest(JOB, "aob-agent-x"))
    return made


def test_the_kubernetes_job_is_confined_and_leaves_no_secret_behind() -> None:
    import kubernetes_validate

    manifests = kubernetes_manifests()
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, "1.30.0", strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{manifest['kind']}: {exc.message} at {list(exc.absolute_path)}")
    kinds = {manifest["kind"]: manifest for manifest in manifests}
    job = kinds["Job"]
    pod_spec = job["spec"]["template"]["spec"]
    assert pod_spec["automountServiceAccountToken"] is False
    assert pod_spec["securityContext"]["runAsNonRoot"] is True
    assert pod_spec["securityContext"]["runAsUser"] != 0
    assert pod_spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod_spec["containers"]
    confined = container["securityContext"]
    assert confined["readOnlyRootFilesystem"] is True
    assert confined["allowPrivilegeEscalation"] is False
    assert confined["capabilities"] == {"drop": ["ALL"]}
    # Deny-all egress for exactly this Job's pod, owned by the Job so it goes when the Job does.
    policy = kinds["NetworkPolicy"]
    assert "Egress" in policy["spec"]["policyTypes"] and policy["spec"]["egress"] == []
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()
    (owner,) = policy["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", "aob-agent-x", "job-uid-1")
    # A Secret, if any, must be owned by the Job: a crashed worker's would otherwise stay forever.
    secret = kinds.get("Secret")
    assert secret is None or secret["metadata"].get("ownerReferences"), "a Secret not owned by its Job"
