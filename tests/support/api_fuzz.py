"""The API under fuzz: the app in-process with its clients (every answer checked against the OpenAPI document),
the operations of its OpenAPI schema, hostile values."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
from hypothesis import strategies as st

from common.db import create_pool, migrate
from common.redis_client import connect_redis
from common.settings import ApiSettings
from orchestrator import create_app
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.api import chain_definition
from tests.support.deployment import ADMIN_KEY
from tests.support.openapi_check import AnswerCheck


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": [value]}
    return value


# Values a careless boundary passes on to Postgres, Redis, the compiler or the JSON encoder.
HOSTILE: tuple[Any, ...] = (
    "a\x00b",
    "\ud800",
    "x\udfffy",
    "\x00",
    "",
    " ",
    "é" * 300,
    "x" * 70_000,
    "../../../etc/passwd",
    "{{ 7 * 7 }}",
    "%00",
    "\u202e\ufeff",
    10**30,
    -(10**30),
    2**63,
    -1,
    0,
    1e308,
    float("inf"),
    float("nan"),
    True,
    None,
    [],
    {},
    ["\x00"],
    {"\x00": 1},
    {"k": "\ud800"},
    {"\ud800": {"x": "\x00"}},
    _nested(200),
)
# The values of HOSTILE that have broken a route before (or came closest), for sweeps that must stay short.
HOSTILE_CORE: tuple[Any, ...] = ("a\x00b", "\ud800", "x" * 5000, 10**30, 2**63, -1, float("nan"), None, {"\x00": 1})
# In a URL path: what survives percent-decoding in the server.
HOSTILE_PATH: tuple[str, ...] = ("a%00b", "%00", "%ED%A0%80", "x" * 5000, "..%2F..", " ", "%FF")
# In a query string: httpx percent-encodes these.
HOSTILE_QUERY: tuple[str, ...] = ("a\x00b", "\x00", "x" * 5000, "-1", "99999999999999999999999", "1e400", "NaN", "")


@dataclass(frozen=True)
class Operation:
    """One method and path of the OpenAPI schema, with its parameters and JSON body properties."""

    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    body_properties: tuple[str, ...] | None
    body_schema: dict[str, Any] | None = None

    def url(self, values: dict[str, str]) -> str:
        path = self.path
        for name in self.path_params:
            path = re.sub(r"{" + name + r"(:path)?}", values[name].replace("\\", "\\\\"), path)
        return path


def operations(schema: dict[str, Any]) -> list[Operation]:
    """Every operation of ``schema`` except ``/metrics`` (not JSON)."""
    found = []
    for path, methods in schema["paths"].items():
        if path == "/metrics":
            continue
        for method, spec in methods.items():
            params = spec.get("parameters", [])
            found.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(re.findall(r"{([^}:]+)(?::path)?}", path)),
                    query_params=tuple(p["name"] for p in params if p["in"] == "query"),
                    body_properties=_body_properties(schema, spec) if "requestBody" in spec else None,
                    body_schema=_body_schema(spec),
                )
            )
    return found


def _body_schema(spec: dict[str, Any]) -> dict[str, Any] | None:
    schema: dict[str, Any] | None = (
        spec.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    return schema


def _body_properties(schema: dict[str, Any], spec: dict[str, Any]) -> tuple[str, ...]:
    content = spec.get("requestBody", {}).get("content", {}).get("application/json", {})
    ref = content.get("schema", {})
    for option in ref.get("anyOf", [ref]):
        if "$ref" in option:
            name = option["$ref"].rsplit("/", 1)[-1]
            return tuple(schema["components"]["schemas"][name].get("properties", {}))
    return ()


def json_content(body: Any) -> dict[str, Any]:
    """Request kwargs sending ``body`` as JSON the way Python writes it: lone surrogates escaped, NaN as ``NaN``."""
    return {"content": json.dumps(body).encode(), "headers": {"Content-Type": "application/json"}}


class ApiUnderFuzz:
    """The app with its own Redis prefix and Postgres schema, a client authenticated as the bootstrap admin, and
    ids of things that exist (a workflow, its name, a run), so that paths also reach past the 404s."""

    def __init__(self) -> None:
        self.schema_name = f"t_{uuid.uuid4().hex[:12]}"
        self.prefix = f"t{uuid.uuid4().hex[:12]}:"
        self.known: list[str] = []
        self.stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> ApiUnderFuzz:
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
        await self.stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.client = await self.stack.enter_async_context(
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=self.app),
                base_url="http://aob",
                headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                # Every answer, 4xx included, must also be what the OpenAPI document says it is.
                event_hooks={"response": [AnswerCheck(self.app).hook]},
            )
        )
        created = await self.client.post(
            "/api/v1/workflows", json={"name": "fz/one", "definition": chain_definition(2)}
        )
        run = await self.client.post("/api/v1/runs", json={"workflow_id": "fz/one"})
        key = await self.client.post("/api/v1/api-keys", json={"name": "fz"})
        self.known = [created.json()["id"], "fz/one", run.json()["id"], key.json()["id"], "0" * 64]
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stack.aclose()
        await self.pool.close()
        keys = [k async for k in self.redis.scan_iter(match=f"{self.prefix}*", count=1000)]
        if keys:
            await self.redis.delete(*keys)
        await self.redis.aclose()
        conn = await asyncpg.connect(DATABASE_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {self.schema_name} CASCADE")
        await conn.close()

    def operations(self) -> list[Operation]:
        return operations(self.app.openapi())

    @property
    def components(self) -> dict[str, Any]:
        """The schemas ``$ref`` names in the live OpenAPI schema."""
        schemas: dict[str, Any] = self.app.openapi()["components"]["schemas"]
        return schemas

    async def answer(self, method: str, url: str, timeout_s: float, **kwargs: Any) -> httpx.Response | None:
        """The response, or None when it did not complete in ``timeout_s`` (the transport returns whole bodies,
        so a live event stream of a run that has not ended never completes)."""
        try:
            return await asyncio.wait_for(self.client.request(method, url, **kwargs), timeout_s)
        except TimeoutError:
            return None


def is_stream(url: str) -> bool:
    """Whether ``url`` may answer with a live event stream, which stays open while its run has not ended."""
    return url.split("?")[0].endswith("/events")


def check_answer(response: httpx.Response | None, url: str, what: str) -> None:
    """No 5xx; every error in the one error shape; only an event stream may stay open."""
    if response is None:
        assert is_stream(url), f"{what}: no answer"
        return
    assert response.status_code < 500, f"{what} -> {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}, f"{what}: {response.text[:500]}"


def shaped(schema: dict[str, Any], components: dict[str, Any], free: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Values that follow ``schema`` (an OpenAPI component or part of one), with ``free`` wherever any JSON goes,
    so that a fuzz also reaches the code behind the validation of the request's shape."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return st.deferred(lambda: shaped(components[name], components, free))
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return st.one_of([shaped(option, components, free) for option in options])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(lambda s: len(s) <= 200)
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "integer":
        low, high = schema.get("minimum"), schema.get("maximum")
        return st.integers(None if low is None else int(low), None if high is None else int(high))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        return st.lists(shaped(schema.get("items", {}), components, free), max_size=3)
    if kind == "object" and "properties" in schema:
        properties = {name: shaped(part, components, free) for name, part in schema["properties"].items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: value for name, value in properties.items() if name in required},
            optional={name: value for name, value in properties.items() if name not in required},
        )
    return free
