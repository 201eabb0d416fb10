"""Agent capabilities (issue 14): an agent's run-scoped patch token cannot switch off the human gate after it.

Before: the token patched anything in its run (the gate's timeout, approvers, type, its edges, a later HTTP
node's URL, new ``workflow`` or ``map`` nodes), and it was minted even for agents whose tools left patching out.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.auth import authenticate_agent_token
from common.keys import Keys
from tests.integration.workers.agent.test_handler import agent_deployment
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from workers.agent import AgentHandler
from workers.agent._credentials import AgentCredentials

# agent -> gate --approved--> send: the agent is queued (no agent worker runs here), so the run stays patchable.
DEFINITION: dict[str, Any] = {
    "nodes": [
        {"id": "agent", "type": "agent", "config": {"prompt": "work", "tools": ["patch_workflow"]}},
        {"id": "gate", "type": "hitl", "config": {"title": "send?", "approvers": ["carol"]}},
        {"id": "send", "type": "http", "config": {"method": "POST", "url": "https://partner.example/orders"}},
    ],
    "edges": [{"from": "agent", "to": "gate"}, {"from": "gate", "to": "send", "branch": "approved"}],
}


def add(path: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


MAP_BODY = {"nodes": [{"id": "a", "type": "agent", "config": {"prompt": "x"}}]}
# Each escalation, and the (op index, path) the refusal must name.
ESCALATIONS: dict[str, tuple[list[dict[str, Any]], int, str]] = {
    "gate_timeout_approves": (
        [add("/nodes/1/config/timeout_s", 0.01), add("/nodes/1/config/on_timeout", "approve")],
        0,
        "/nodes/1/config/timeout_s",
    ),
    "gate_approvers_cleared": ([{"op": "remove", "path": "/nodes/1/config/approvers"}], 0, "/nodes/1/config/approvers"),
    "gate_self_approval": (
        [add("/nodes/1/config/allow_self_approval", True)],
        0,
        "/nodes/1/config/allow_self_approval",
    ),
    "gate_becomes_noop": (
        [
            {"op": "replace", "path": "/nodes/1/type", "value": "noop"},
            {"op": "replace", "path": "/nodes/1/config", "value": {}},
        ],
        0,
        "/nodes/1/type",
    ),
    "reroute_remove_edge": (
        [{"op": "remove", "path": "/edges/1"}, add("/edges/-", {"from": "agent", "to": "send"})],
        0,
        "/edges/1",
    ),
    "reroute_replace_edge": ([{"op": "replace", "path": "/edges/1/from", "value": "agent"}], 0, "/edges/1/from"),
    "reroute_new_edge": ([add("/edges/-", {"from": "agent", "to": "send"})], 0, "/edges/-"),
    "http_url": (
        [{"op": "replace", "path": "/nodes/2/config/url", "value": "https://attacker.example/"}],
        0,
        "/nodes/2/config/url",
    ),
    "workflow_node": (
        [
            add("/nodes/-", {"id": "w", "type": "workflow", "config": {"workflow": "payroll"}}),
            add("/edges/-", {"from": "agent", "to": "w"}),
        ],
        0,
        "/nodes/-",
    ),
    "map_of_agents": (
        [
            add(
                "/nodes/-",
                {
                    "id": "m",
                    "type": "map",
                    "config": {"items": list(range(1000)), "body": MAP_BODY, "concurrency": 1000},
                },
            ),
            add("/edges/-", {"from": "agent", "to": "m"}),
        ],
        0,
        "/nodes/-",
    ),
}


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool) as client:
        yield client


async def agent_run(api: Api, redis: aioredis.Redis, keys: Keys, **mint: Any) -> tuple[str, dict[str, str]]:
    """A live run of DEFINITION and the auth headers of its agent node's patch token."""
    workflow = await api.create_workflow(f"agent-gate-{uuid.uuid4().hex[:8]}", DEFINITION)
    run = await api.start_run(workflow["id"])
    token = await AgentCredentials(redis, keys).mint(
        tenant_id="default", run_id=run["id"], node_id="agent", ttl_s=60, **mint
    )
    return run["id"], {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("name", list(ESCALATIONS))
async def test_an_agent_cannot_weaken_the_gate_after_it(api: Api, redis: aioredis.Redis, keys: Keys, name: str) -> None:
    ops, index, path = ESCALATIONS[name]
    run_id, agent = await agent_run(api, redis, keys)
    before = (await api.request("GET", f"/api/v1/runs/{run_id}/definition")).json()
    response = await api.request("POST", f"/api/v1/runs/{run_id}/patch", key=agent, json={"ops": ops})
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "patch_forbidden"
    assert error["details"][0]["index"] == index and error["details"][0]["path"] == path, error
    assert f"ops[{index}] " in error["message"] and path in error["message"]
    assert (await api.request("GET", f"/api/v1/runs/{run_id}/definition")).json() == before


async def test_an_agent_may_add_allowed_nodes_downstream_of_itself(api: Api, redis: aioredis.Redis, keys: Keys) -> None:
    run_id, agent = await agent_run(api, redis, keys, patch_types=["transform", "noop"])
    path = f"/api/v1/runs/{run_id}/patch"
    first = [
        add("/nodes/-", {"id": "t1", "type": "transform", "config": {"output": 1}}),
        add("/edges/-", {"from": "agent", "to": "t1"}),
    ]
    assert (await api.request("POST", path, key=agent, json={"ops": first})).status_code == 200
    # A node it added earlier may feed the next one; an http node is not in this agent's allowance.
    then = [add("/nodes/-", {"id": "n2", "type": "noop"}), add("/edges/-", {"from": "t1", "to": "n2"})]
    assert (await api.request("POST", path, key=agent, json={"ops": then})).status_code == 200
    http = [
        add("/nodes/-", {"id": "h", "type": "http", "config": {"url": "https://x.example/"}}),
        add("/edges/-", {"from": "n2", "to": "h"}),
    ]
    refused = await api.request("POST", path, key=agent, json={"ops": http})
    assert refused.status_code == 403 and "type 'http' is not one this agent may add" in refused.text
    orphan = [add("/nodes/-", {"id": "o", "type": "noop"})]
    refused = await api.request("POST", path, key=agent, json={"ops": orphan})
    assert refused.status_code == 403 and "downstream of itself" in refused.text


async def test_the_token_records_its_node_and_allowance(redis: aioredis.Redis, keys: Keys) -> None:
    token = await AgentCredentials(redis, keys).mint(
        tenant_id="t", run_id="r", node_id="planner", ttl_s=60, patch_types=["noop"]
    )
    principal = await authenticate_agent_token(redis, keys, token)
    assert principal is not None and principal.grant is not None
    assert (principal.grant.node_id, principal.grant.patch_types) == ("planner", ("noop",))


@pytest.mark.parametrize(("tools", "minted"), [(None, False), (["http_request"], False), (["patch_workflow"], True)])
async def test_a_patch_token_is_minted_only_when_tools_list_patching(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, tools: list[str] | None, minted: bool
) -> None:
    agent = agent_deployment(deployment)
    definition = {
        "nodes": [{"id": "agent", "type": "agent", "config": {"prompt": '{"report_patch": true}', "tools": tools}}],
        "edges": [],
    }
    async with Engine(agent, redis, handlers=[AgentHandler(agent.worker(), pg_pool, redis)], pool=pg_pool) as engine:
        run_id = await engine.submit(definition, {})
        assert await engine.wait_ended(run_id, timeout_s=60) == "succeeded", await engine.node_states(run_id)
        assert await engine.output(run_id, "agent") == {"patch": minted}
