"""Approvals bound to principals, and roles enforced on every route (issue 14, "people, roles, approvals").

Before: approvals trusted free-text key names (two keys named ``alice`` met a two-person quorum, a key named
``admin`` passed ``approvers: ["admin"]``, the run's starter approved with a second key) and roles were only
admin/member. Also: an editor's patch that weakens an approval gate is refused; an admin's is applied and audited.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.keys import Keys
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.engine import Engine
from tests.support.eventually import eventually
from workers.hitl import HitlHandler


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys) -> AsyncIterator[Api]:
    async with (
        running_api(deployment, redis, pg_pool, engine=False) as client,
        Engine(deployment, redis, handlers=[HitlHandler(pg_pool, redis, keys)], pool=pg_pool),
    ):
        yield client


def gate(**config: Any) -> dict[str, Any]:
    """start -> gate --approved--> done."""
    return {
        "nodes": [
            {"id": "start", "type": "noop", "config": {}},
            {"id": "gate", "type": "hitl", "config": {"title": "ship it?", **config}},
            {"id": "done", "type": "noop", "config": {}},
        ],
        "edges": [{"from": "start", "to": "gate"}, {"from": "gate", "to": "done", "branch": "approved"}],
    }


async def gated_run(api: Api, key: dict[str, str] | None = None, **config: Any) -> tuple[str, str]:
    """A run waiting at its gate; returns the run id and the approval's decide path."""
    workflow = await api.create_workflow(f"gate-{uuid.uuid4().hex[:8]}", gate(**config), key=key)
    run = await api.start_run(workflow["id"], key=key)

    async def approval() -> str:
        params = {"status": "pending", "run_id": run["id"]}
        items = (await api.request("GET", "/api/v1/approvals", params=params)).json()["items"]
        assert len(items) == 1
        return str(items[0]["id"])

    return run["id"], f"/api/v1/approvals/{await eventually(approval)}/decide"


async def decide(api: Api, path: str, key: dict[str, str], decision: str = "approve") -> Any:
    return await api.request("POST", path, key=key, json={"decision": decision})


async def test_two_keys_of_one_name_are_one_approver(api: Api) -> None:
    _, path = await gated_run(api, approvers=["alice", "bob"], required_approvals=2)
    # The default role (member then, editor now) may decide in both versions.
    first, second = await api.new_key(role=None, name="alice"), await api.new_key(role=None, name="alice")
    assert (await decide(api, path, first)).json()["status"] == "pending"
    again = await decide(api, path, second)
    assert again.status_code == 409, again.text
    assert "'alice' has already decided" in again.json()["error"]["message"]
    bob = await api.new_key(role=None, name="bob")
    assert (await decide(api, path, bob)).json()["status"] == "approved"


async def test_a_key_named_like_a_role_does_not_pass_for_it(api: Api) -> None:
    named_admin = await api.request("POST", "/api/v1/api-keys", json={"name": "admin"})
    assert named_admin.status_code == 422, named_admin.text
    assert "'admin' is a role name" in named_admin.json()["error"]["message"]
    _, path = await gated_run(api, approvers=["admin"])
    impostor = await api.new_key(role="editor", name="admin", owner="mallory")
    refused = await decide(api, path, impostor)
    assert refused.status_code == 403 and "only admin may decide" in refused.json()["error"]["message"]
    assert (await decide(api, path, await api.new_key(role="admin"))).json()["status"] == "approved"


async def test_the_starter_may_not_approve_with_a_second_key(api: Api) -> None:
    laptop, ci = await api.new_key(role=None, name="sam"), await api.new_key(role=None, name="sam")
    _, path = await gated_run(api, key=laptop)
    refused = await decide(api, path, ci)
    assert refused.status_code == 403, refused.text
    assert "'sam' started run" in refused.json()["error"]["message"]
    assert (await decide(api, path, await api.new_key(role=None))).json()["status"] == "approved"


# (method, path template, body, lowest role allowed) for one route of each permission.
ROUTES = [
    ("GET", "/api/v1/runs/{run}", None, "viewer"),
    ("GET", "/api/v1/approvals", None, "viewer"),
    ("POST", "{decide}", {"decision": "reject"}, "approver"),
    (
        "POST",
        "/api/v1/workflows",
        {"name": "w-{uid}", "definition": {"nodes": [{"id": "a", "type": "noop"}]}},
        "editor",
    ),
    ("POST", "/api/v1/runs/{run}/cancel", None, "editor"),
    ("GET", "/api/v1/api-keys", None, "admin"),
    ("GET", "/api/v1/audit", None, "admin"),
]
RANKS = ["viewer", "approver", "editor", "admin"]


@pytest.mark.parametrize("role", RANKS)
async def test_each_role_may_do_what_it_holds_and_nothing_more(api: Api, role: str) -> None:
    run_id, decide_path = await gated_run(api)
    key = await api.new_key(role=role)
    assert (await api.request("GET", "/api/v1/me", key=key)).json()["role"] == role
    for method, template, body, lowest in ROUTES:
        path = template.format(run=run_id, decide=decide_path)
        if isinstance(body, dict) and "name" in body:
            body = body | {"name": body["name"].format(uid=uuid.uuid4().hex[:8])}
        response = await api.request(method, path, key=key, json=body)
        allowed = RANKS.index(role) >= RANKS.index(lowest)
        # Allowed calls may still be refused for other reasons (a run the reject already ended): never with 403.
        assert response.status_code < 500 and (response.status_code != 403) == allowed, (
            role,
            method,
            path,
            response.text,
        )
        if not allowed:
            assert f"has role '{role}'" in response.json()["error"]["message"]


async def test_member_is_no_longer_a_role(api: Api) -> None:
    response = await api.request("POST", "/api/v1/api-keys", json={"name": "old", "role": "member"})
    assert response.status_code == 422


async def test_an_editor_may_not_weaken_a_running_gate_and_an_admin_is_audited(api: Api) -> None:
    editor = await api.new_key(role="editor")
    # The gate waits behind a node nobody runs, so the run stays patchable.
    definition = gate(approvers=["carol"])
    definition["nodes"][0]["type"] = "agent"
    definition["nodes"][0]["config"] = {"prompt": "hold"}
    workflow = await api.create_workflow(f"held-{uuid.uuid4().hex[:8]}", definition, key=editor)
    run = await api.start_run(workflow["id"], key=editor)
    weaken = {
        "ops": [
            {"op": "add", "path": "/nodes/1/config/timeout_s", "value": 0.01},
            {"op": "add", "path": "/nodes/1/config/on_timeout", "value": "approve"},
        ]
    }
    patch_path = f"/api/v1/runs/{run['id']}/patch"
    refused = await api.request("POST", patch_path, key=editor, json=weaken)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "gate_protected"
    assert "config.on_timeout, config.timeout_s" in refused.json()["error"]["message"]
    around = {"ops": [{"op": "add", "path": "/edges/-", "value": {"from": "start", "to": "done"}}]}
    bypass = await api.request("POST", patch_path, key=editor, json=around)
    assert bypass.status_code == 403 and "done no longer wait for it" in bypass.json()["error"]["message"]
    harmless = {"ops": [{"op": "add", "path": "/nodes/-", "value": {"id": "after", "type": "noop"}}]}
    assert (await api.request("POST", patch_path, key=editor, json=harmless)).status_code == 200

    applied = await api.request("POST", patch_path, json=weaken)
    assert applied.status_code == 200, applied.text
    audit = (await api.request("GET", "/api/v1/audit", params={"action": "run.gate_weakened"})).json()["items"]
    [entry] = [item for item in audit if item["target"] == run["id"]]
    assert entry["key_id"] == "bootstrap"
    assert entry["detail"]["weakened"] == ["hitl node 'gate': config.on_timeout, config.timeout_s changed"]
    assert entry["detail"]["ops"] == weaken["ops"]
