"""Approvals API: list, show, decide over HTTP with real keys; self-approval, approvers, 409s, tenant scoping."""

from __future__ import annotations

import asyncio
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


def gated(*gates: str, **config: Any) -> dict[str, Any]:
    """Each gate --approved--> <gate>_ok."""
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    for g in gates:
        nodes += [
            {"id": g, "type": "hitl", "config": {"title": f"{g}?", **config}},
            {"id": f"{g}_ok", "type": "noop", "config": {}},
        ]
        edges.append({"from": g, "to": f"{g}_ok", "branch": "approved"})
    return {"nodes": nodes, "edges": edges}


async def pending(api: Api, run_id: str, count: int = 1) -> list[dict[str, Any]]:
    async def check() -> list[dict[str, Any]]:
        response = await api.request("GET", "/api/v1/approvals", params={"status": "pending", "run_id": run_id})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        assert len(items) == count, items
        return items

    return await eventually(check)


async def test_decide_over_http(api: Api) -> None:
    await api.create_workflow("gate", gated("g"))
    run = await api.start_run("gate")
    [approval] = await pending(api, run["id"])
    assert set(approval) >= {"id", "run_id", "node_id", "status", "title", "description", "decisions"}
    assert (approval["status"], approval["title"], approval["expires_at"]) == ("pending", "g?", None)
    assert (await api.request("GET", f"/api/v1/runs/{run['id']}")).json()["status"] == "waiting"

    path = f"/api/v1/approvals/{approval['id']}/decide"
    own = await api.request("POST", path, json={"decision": "approve"})
    assert own.status_code == 403 and own.json()["error"]["code"] == "forbidden"
    assert "allow_self_approval is false" in own.json()["error"]["message"]
    assert (await api.request("POST", path, json={"decision": "maybe"})).status_code == 422

    alice = await api.new_key(role="editor", name="alice")
    decided = await api.request("POST", path, key=alice, json={"decision": "approve", "comment": "ok"})
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["status"] == "approved"
    assert [(d["decision"], d["decided_by"], d["comment"]) for d in body["decisions"]] == [("approve", "alice", "ok")]
    again = await api.request("POST", path, key=alice, json={"decision": "reject"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    assert (await api.wait_run(run["id"]))["status"] == "succeeded"
    shown = await api.request("GET", f"/api/v1/approvals/{approval['id']}")
    assert shown.status_code == 200 and shown.json()["status"] == "approved"
    still = await api.request("GET", "/api/v1/approvals", params={"status": "pending", "run_id": run["id"]})
    assert still.json() == {"items": [], "next_cursor": None}


async def test_ten_concurrent_decisions_one_wins(api: Api) -> None:
    await api.create_workflow("race", gated("g"))
    run = await api.start_run("race")
    [approval] = await pending(api, run["id"])
    keys = [await api.new_key(role="editor", name=f"user{i}") for i in range(10)]
    path = f"/api/v1/approvals/{approval['id']}/decide"
    responses = await asyncio.gather(
        *(api.request("POST", path, key=key, json={"decision": "approve"}) for key in keys)
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 9, [r.text for r in responses]
    assert (await api.wait_run(run["id"]))["status"] == "succeeded"
    shown = (await api.request("GET", f"/api/v1/approvals/{approval['id']}")).json()
    assert len(shown["decisions"]) == 1


async def test_approvers_tenants_and_pages(api: Api) -> None:
    await api.create_workflow("two", gated("a", "b", approvers=["carol", "admin"]))
    run = await api.start_run("two")
    await pending(api, run["id"], count=2)

    first = await api.request("GET", "/api/v1/approvals", params={"run_id": run["id"], "limit": 1})
    assert first.status_code == 200 and first.json()["next_cursor"]
    second = await api.request(
        "GET", "/api/v1/approvals", params={"run_id": run["id"], "limit": 1, "cursor": first.json()["next_cursor"]}
    )
    assert second.json()["next_cursor"] is None
    [a], [b] = first.json()["items"], second.json()["items"]
    assert {a["node_id"], b["node_id"]} == {"a", "b"}
    bad = await api.request("GET", "/api/v1/approvals", params={"cursor": "nonsense"})
    assert bad.status_code == 422

    outsider = await api.new_key(tenant="elsewhere", role="admin", name="carol")
    assert (await api.request("GET", f"/api/v1/approvals/{a['id']}", key=outsider)).status_code == 404
    listed = await api.request("GET", "/api/v1/approvals", key=outsider, params={"run_id": run["id"]})
    assert listed.json() == {"items": [], "next_cursor": None}
    decide_a = f"/api/v1/approvals/{a['id']}/decide"
    assert (await api.request("POST", decide_a, key=outsider, json={"decision": "approve"})).status_code == 404

    dave = await api.new_key(role="editor", name="dave")
    refused = await api.request("POST", decide_a, key=dave, json={"decision": "approve"})
    assert refused.status_code == 403 and "only carol, admin may decide" in refused.json()["error"]["message"]
    carol = await api.new_key(role="editor", name="carol")
    other_admin = await api.new_key(role="admin", name="ops")
    assert (await api.request("POST", decide_a, key=carol, json={"decision": "approve"})).status_code == 200
    decide_b = f"/api/v1/approvals/{b['id']}/decide"
    assert (await api.request("POST", decide_b, key=other_admin, json={"decision": "reject"})).status_code == 200
    ended = await api.wait_run(run["id"])
    assert ended["status"] == "succeeded"
    nodes = {f"{a['node_id']}_ok": "succeeded", f"{b['node_id']}_ok": "skipped"}
    assert {n: ended["nodes"][n]["status"] for n in nodes} == nodes


async def test_cancelling_the_run_over_http_cancels_its_approval(api: Api) -> None:
    await api.create_workflow("gate-cancel", gated("g"))
    run = await api.start_run("gate-cancel")
    [approval] = await pending(api, run["id"])
    cancelled = await api.request("POST", f"/api/v1/runs/{run['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    shown = await api.request("GET", f"/api/v1/approvals/{approval['id']}")
    assert shown.json()["status"] == "cancelled"
    alice = await api.new_key(role="editor", name="alice")
    late = await api.request(
        "POST", f"/api/v1/approvals/{approval['id']}/decide", key=alice, json={"decision": "approve"}
    )
    assert late.status_code == 409
