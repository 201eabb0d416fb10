"""JSON Schemas never reach out and never backtrack (issue 14: schemas).

A workflow's inputs schema, an agent's ``output_schema`` and every schema in node configs come from authors; run
inputs come from outside. A ``$ref`` must never make the API fetch a URL or read a file, and a ``pattern`` must
be matched in linear time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from workers.agent.program._job import AgentJob

SECRET = "TOPSECRET-d41d8cd98f00b204"


class _SchemaServer(ThreadingHTTPServer):
    daemon_threads = True
    hits: list[str]


class _Serve(BaseHTTPRequestHandler):
    server: _SchemaServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        body = json.dumps({"enum": [SECRET]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def schema_server() -> Iterator[_SchemaServer]:
    """A local HTTP server that serves a schema (holding ``SECRET``) and records every request."""
    server = _SchemaServer(("127.0.0.1", 0), _Serve)
    server.hits = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret.json"
    path.write_text(json.dumps({"enum": [SECRET]}))
    return path


@pytest.fixture
def blackhole() -> Iterator[tuple[str, list[socket.socket]]]:
    """A TCP port that accepts connections and never answers (for 3 s at most, so a blocked loop comes back)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    done = threading.Event()

    def hold() -> None:
        listener.settimeout(0.05)
        deadline = time.monotonic() + 3
        while not done.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                accepted.append(listener.accept()[0])
        listener.close()
        for conn in accepted:
            conn.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/schema.json", accepted
    done.set()
    thread.join()


@pytest.fixture
async def api(deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> AsyncIterator[Api]:
    async with running_api(deployment, redis, pg_pool, engine=False) as client:
        yield client


def _with_ref(ref: str) -> dict[str, Any]:
    return {
        "inputs": {"type": "object", "properties": {"a": {"$ref": ref}}},
        "nodes": [{"id": "n", "type": "noop"}],
    }


async def _create_then_submit(api: Api, name: str, definition: dict[str, Any]) -> list[httpx.Response]:
    """Create the workflow; if that is accepted, submit a run of it too. Returns every response."""
    created = await api.request("POST", "/api/v1/workflows", json={"name": name, "definition": definition})
    if created.status_code != 201:
        return [created]
    submitted = await api.request("POST", "/api/v1/runs", json={"workflow_id": name, "inputs": {"a": "x"}})
    return [created, submitted]


async def _store_behind_the_api(api: Api, pool: asyncpg.Pool, name: str, definition: dict[str, Any]) -> None:
    """A workflow whose stored definition holds what the API now refuses (saved before the check existed)."""
    await api.create_workflow(name, {"nodes": [{"id": "n", "type": "noop"}]})
    await pool.execute(
        "UPDATE workflow_versions SET definition = $2 WHERE workflow_id = (SELECT id FROM workflows WHERE name = $1)",
        name,
        definition,
    )


async def test_a_remote_ref_is_refused_at_save_and_never_fetched(api: Api, schema_server: _SchemaServer) -> None:
    url = f"http://127.0.0.1:{schema_server.server_address[1]}/schema.json"
    responses = await _create_then_submit(api, "remote", _with_ref(url))
    assert schema_server.hits == []
    assert [r.status_code for r in responses] == [422], [r.text for r in responses]
    assert "inputs.properties.a.$ref" in responses[0].json()["error"]["message"]


async def test_a_file_ref_is_refused_and_its_content_never_shown(api: Api, secret_file: Path) -> None:
    responses = await _create_then_submit(api, "file", _with_ref(secret_file.as_uri()))
    assert all(SECRET not in r.text for r in responses), [r.text for r in responses]
    assert [r.status_code for r in responses] == [422]
    assert "inputs.properties.a.$ref" in responses[0].json()["error"]["message"]


@pytest.mark.parametrize("kind", ["http", "file"])
async def test_a_stored_definition_with_a_foreign_ref_cannot_reach_out_at_submission(
    api: Api, pg_pool: asyncpg.Pool, schema_server: _SchemaServer, secret_file: Path, kind: str
) -> None:
    ref = f"http://127.0.0.1:{schema_server.server_address[1]}/s.json" if kind == "http" else secret_file.as_uri()
    await _store_behind_the_api(api, pg_pool, "stored", _with_ref(ref))
    response = await api.request("POST", "/api/v1/runs", json={"workflow_id": "stored", "inputs": {"a": "x"}})
    assert schema_server.hits == []
    assert SECRET not in response.text
    assert response.status_code == 422, response.text
    assert "$ref" in response.json()["error"]["message"]


async def test_a_ref_to_a_socket_that_never_answers_does_not_block_the_api(
    api: Api, blackhole: tuple[str, list[socket.socket]]
) -> None:
    url, accepted = blackhole
    started = time.monotonic()
    answered: dict[str, float] = {}

    async def health() -> None:
        await asyncio.sleep(0.05)  # let the submission start first
        response = await api.request("GET", "/healthz")
        assert response.status_code == 200
        answered["health"] = time.monotonic() - started

    results = await asyncio.gather(_create_then_submit(api, "hole", _with_ref(url)), health())
    assert answered["health"] < 1.0, f"another request waited {answered['health']:.1f}s"
    assert accepted == []
    assert [r.status_code for r in results[0]] == [422]


@pytest.mark.parametrize(
    ("schema", "inputs", "path"),
    [
        ({"properties": {"a": {"type": "string", "pattern": "^(a+)+$"}}}, {"a": "a" * 25 + "!"}, "inputs.a"),
        (
            {"patternProperties": {"^(a+)+$": {"type": "integer"}}, "additionalProperties": {"type": "integer"}},
            {"a" * 24 + "!": "x"},
            "inputs." + "a" * 24 + "!",
        ),
    ],
    ids=["pattern", "patternProperties"],
)
async def test_a_backtracking_pattern_is_matched_in_linear_time(
    api: Api, schema: dict[str, Any], inputs: dict[str, Any], path: str
) -> None:
    await api.create_workflow("re", {"inputs": {"type": "object", **schema}, "nodes": [{"id": "n", "type": "noop"}]})
    started = time.monotonic()
    response = await api.request("POST", "/api/v1/runs", json={"workflow_id": "re", "inputs": inputs})
    elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"took {elapsed:.1f}s"
    assert response.status_code == 422, response.text
    assert path in [d["path"] for d in response.json()["error"]["details"]]


async def test_a_pattern_that_needs_backtracking_is_refused_at_save(api: Api) -> None:
    definition = {
        "inputs": {"properties": {"a": {"type": "string", "pattern": "^(a)\\1$"}}},
        "nodes": [{"id": "n", "type": "noop"}],
    }
    response = await api.request("POST", "/api/v1/workflows", json={"name": "backref", "definition": definition})
    assert response.status_code == 422, response.text
    assert "inputs.properties.a.pattern" in response.json()["error"]["message"]


async def test_an_agent_output_schema_ref_is_refused_at_save_with_its_path(
    api: Api, schema_server: _SchemaServer
) -> None:
    url = f"http://127.0.0.1:{schema_server.server_address[1]}/out.json"
    agent = {"prompt": "p", "output_schema": {"properties": {"x": {"$ref": url}}}}
    definition = {"nodes": [{"id": "n", "type": "agent", "config": agent}]}
    response = await api.request("POST", "/api/v1/workflows", json={"name": "agent", "definition": definition})
    assert schema_server.hits == []
    assert response.status_code == 422, response.text
    assert "nodes[0].config.output_schema.properties.x.$ref" in response.json()["error"]["message"]


def test_the_agent_program_refuses_a_foreign_ref_in_its_job(schema_server: _SchemaServer, secret_file: Path) -> None:
    url = f"http://127.0.0.1:{schema_server.server_address[1]}/job.json"
    for ref in (url, secret_file.as_uri()):
        job = {
            "run_id": "r",
            "node_id": "n",
            "prompt": "p",
            "model": "m",
            "llm": {"base_url": "http://llm", "api_key": "k"},
            "output_schema": {"properties": {"x": {"$ref": ref}}},
        }
        with pytest.raises(ValidationError) as caught:
            AgentJob.model_validate(job)
        assert "properties.x.$ref" in str(caught.value)
        assert SECRET not in str(caught.value)
    assert schema_server.hits == []
