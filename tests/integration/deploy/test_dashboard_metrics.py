"""The Grafana dashboard asks only for metrics aob exports: every name in its queries is in the ``/metrics`` of a
live API (after a run was started) or of the fanout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import asyncpg
import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from fanout import create_fanout_app
from tests.support.api import served_api
from tests.support.deployment import ADMIN_KEY, Deployment

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "observability" / "grafana" / "dashboards" / "aob.json"


def exported(text: str) -> set[str]:
    """Every sample name of a Prometheus exposition (``x_total``, ``x_bucket``, ...)."""
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_every_metric_the_dashboard_queries_is_exported(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    names: set[str] = set()
    async with (
        served_api(deployment.api(), redis, pg_pool) as api_url,
        httpx.AsyncClient(base_url=api_url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as client,
    ):
        definition = {"nodes": [{"id": "a", "type": "noop"}], "edges": []}
        created = await client.post("/api/v1/workflows", json={"name": "metered", "definition": definition})
        assert created.status_code == 201, created.text
        started = await client.post("/api/v1/runs", json={"workflow_id": created.json()["id"], "inputs": {}})
        assert started.status_code == 201, started.text
        names |= exported((await client.get("/metrics")).text)
    fanout = create_fanout_app(deployment.fanout())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fanout), base_url="http://fanout") as client:
        names |= exported((await client.get("/metrics")).text)

    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\baob_[a-z_]+", target["expr"])
    }
    assert queried and queried <= names, sorted(queried - names)
