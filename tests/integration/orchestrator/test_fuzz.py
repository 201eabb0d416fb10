"""Property test from the OpenAPI schema: random requests to every operation never get a 5xx."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.db import create_pool, migrate
from common.redis_client import connect_redis
from common.settings import ApiSettings
from orchestrator import create_app
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.api import chain_definition
from tests.support.deployment import ADMIN_KEY

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_PATH_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=30)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, spec)
        for path, methods in schema["paths"].items()
        for method, spec in methods.items()
        if path not in ("/metrics",)
    ]


def _body_properties(schema: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    content = spec.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {})
    for option in ref.get("anyOf", [ref]):
        if "$ref" in option:
            name = option["$ref"].rsplit("/", 1)[-1]
            return list(schema["components"]["schemas"][name].get("properties", {}))
    return []


class Fuzzer:
    """Owns one event loop with the app and its clients; hypothesis drives it synchronously."""

    def __init__(self, runner: asyncio.Runner) -> None:
        self.runner = runner
        self.schema_name = f"t_{uuid.uuid4().hex[:12]}"
        self.prefix = f"t{uuid.uuid4().hex[:12]}:"
        self.known: list[str] = []

    async def start(self) -> None:
        await migrate(DATABASE_URL, self.schema_name)
        self.redis = connect_redis(REDIS_URL)
        self.pool: asyncpg.Pool = await create_pool(DATABASE_URL, self.schema_name)
        config = ApiSettings(
            redis_url=REDIS_URL,
            database_url=DATABASE_URL,
            key_prefix=self.prefix,
            db_schema=self.schema_name,
            log_json=False,
            admin_key=ADMIN_KEY,
            rate_global_per_min=10**9,
            rate_key_per_min=10**9,
            rate_tenant_per_min=10**9,
            rate_runs_no_agents_per_min=10**9,
            max_active_runs_per_tenant=10**9,
        )
        self.app = create_app(config, redis=self.redis, pool=self.pool)
        self.stack = contextlib.AsyncExitStack()
        await self.stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.client = await self.stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app),
                base_url="http://aob",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            )
        )
        created = await self.client.post(
            "/api/v1/workflows", json={"name": "fz/one", "definition": chain_definition(2)}
        )
        run = await self.client.post("/api/v1/runs", json={"workflow_id": "fz/one"})
        self.known = [created.json()["id"], "fz/one", run.json()["id"], "0" * 64]

    async def stop(self) -> None:
        await self.stack.aclose()
        await self.pool.close()
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}*", count=1000)]
        if keys:
            await self.redis.delete(*keys)
        await self.redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema_name} CASCADE")
        await conn.close()


def test_random_requests_never_get_a_5xx() -> None:
    with asyncio.Runner() as runner:
        fuzzer = Fuzzer(runner)
        runner.run(fuzzer.start())
        try:
            schema = fuzzer.app.openapi()
            operations = _operations(schema)

            @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            @given(data=st.data())
            def check(data: st.DataObject) -> None:
                method, path, spec = data.draw(st.sampled_from(operations), label="operation")
                for name in re.findall(r"{([^}:]+)(?::path)?}", path):
                    value = data.draw(st.sampled_from(fuzzer.known) | _PATH_TEXT, label=name)
                    path = re.sub(r"{" + name + r"(:path)?}", value.replace("\\", "\\\\"), path)
                params = {
                    p["name"]: data.draw(st.text(max_size=12) | st.integers(-5, 300).map(str), label=p["name"])
                    for p in spec.get("parameters", [])
                    if p["in"] == "query" and data.draw(st.booleans())
                }
                kwargs: dict[str, Any] = {"params": params}
                if "requestBody" in spec:
                    props = _body_properties(schema, spec)
                    shaped = st.fixed_dictionaries(
                        {}, optional={p: JSON | st.sampled_from(fuzzer.known) for p in props}
                    )
                    kwargs["json"] = data.draw(shaped | JSON, label="body")
                response = runner.run(_answer(fuzzer.client, method, path, kwargs))
                if response is None:
                    # A live event stream of a run that has not ended never completes: that is an answer, not a hang.
                    assert path.endswith("/events"), f"{method} {path} {kwargs}: no answer in {ANSWER_TIMEOUT_S}s"
                    return
                assert response.status_code < 500, f"{method} {path} {kwargs} -> {response.status_code} {response.text}"
                if response.status_code >= 400:
                    assert set(response.json()["error"]) == {"code", "message", "details"}

            check()
        finally:
            runner.run(fuzzer.stop())


ANSWER_TIMEOUT_S = 10.0


async def _answer(client: httpx.AsyncClient, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response | None:
    """The response, or None when it did not complete in time (the in-process transport returns whole bodies)."""
    try:
        return await asyncio.wait_for(client.request(method, path, **kwargs), ANSWER_TIMEOUT_S)
    except TimeoutError:
        return None
