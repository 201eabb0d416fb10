"""``aob orchestrator`` with AOB_API_WORKERS=2: two processes answer on one port, the revocation and workflow
caches of each stay coherent, SIGTERM stops all, and workers whose parent is killed stop too."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.deployment import ADMIN_KEY, Deployment
from tests.support.eventually import eventually
from tests.support.processes import ServiceProcess

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by its parent) no longer serves.
    return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()


@pytest.fixture
def orchestrator(deployment: Deployment) -> ServiceProcess:
    values = deployment.api()
    env = {
        "AOB_REDIS_URL": values.redis_url or "",
        "AOB_DATABASE_URL": values.database_url or "",
        "AOB_KEY_PREFIX": values.key_prefix,
        "AOB_DB_SCHEMA": values.db_schema,
        "AOB_ADMIN_KEY": ADMIN_KEY,
        "AOB_API_PORT": str(_free_port()),
        "AOB_API_WORKERS": "2",
        "AOB_LOG_LEVEL": "WARNING",
    }
    return ServiceProcess(["orchestrator"], env, Path(tempfile.mkdtemp(prefix="aob-serve-")) / "orchestrator.log")


async def _ready(url: str) -> bool:
    async with httpx.AsyncClient() as client:
        try:
            return (await client.get(f"{url}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False


async def test_two_api_processes_serve_one_port_and_stop_on_sigterm(orchestrator: ServiceProcess) -> None:
    url = f"http://127.0.0.1:{orchestrator.env['AOB_API_PORT']}"
    orchestrator.start()
    assert orchestrator.proc is not None
    try:
        await eventually(lambda: _ready(url), 60, interval_s=0.2)
        workers = _children(orchestrator.proc.pid)
        assert len(workers) == 2
        async with httpx.AsyncClient(base_url=url, headers=ADMIN) as client:
            # New connections spread over the processes; each answers, each with its own caches.
            created = await client.post("/api/v1/api-keys", json={"name": "k", "role": "editor"})
            key = {"Authorization": f"Bearer {created.json()['key']}"}
            for _ in range(10):
                async with httpx.AsyncClient(base_url=url, headers=key) as fresh:
                    assert (await fresh.get("/api/v1/me")).status_code == 200
            assert (await client.delete(f"/api/v1/api-keys/{created.json()['id']}")).status_code == 204
            started = time.monotonic()
            for _ in range(10):
                async with httpx.AsyncClient(base_url=url, headers=key) as fresh:
                    assert (await fresh.get("/api/v1/me")).status_code == 401
            assert time.monotonic() - started < 5
    finally:
        code = orchestrator.stop()
    assert code == 0, orchestrator.log_tail()
    assert not any(_alive(pid) for pid in workers)


async def test_api_processes_stop_when_their_parent_is_killed(orchestrator: ServiceProcess) -> None:
    url = f"http://127.0.0.1:{orchestrator.env['AOB_API_PORT']}"
    orchestrator.start()
    assert orchestrator.proc is not None
    await eventually(lambda: _ready(url), 60, interval_s=0.2)
    workers = _children(orchestrator.proc.pid)
    orchestrator.proc.send_signal(signal.SIGKILL)
    orchestrator.proc.wait()

    async def stopped() -> bool:
        return not any(_alive(pid) for pid in workers)

    await eventually(stopped, 30, interval_s=0.1)
