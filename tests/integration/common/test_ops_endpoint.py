"""The health and metrics endpoint of coordinators and workers: what it answers, and that SIGTERM still drains the
service it runs beside."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from common.metrics import Metrics
from common.ops_endpoint import ops_endpoint
from common.ops_settings import OpsEndpointFields
from common.redis_client import connect_redis
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from tests.support.processes import ServiceProcess, chaos_env
from tests.support.streaming import free_port

# Health probes sent while the service drains: over a second, ten of uvicorn's shutdown ticks.
DRAIN_PROBES = 20


async def test_it_answers_health_readiness_and_the_process_metrics(
    redis: aioredis.Redis, pg_pool: asyncpg.Pool
) -> None:
    metrics = Metrics()
    metrics.counter("aob_worker_tokens_total", "tokens", ["result"]).labels("ok").inc(3)
    port = free_port()
    async with (
        ops_endpoint(OpsEndpointFields(ops_port=port), redis, pg_pool, metrics, "test"),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready"}
        assert 'aob_worker_tokens_total{result="ok"} 3.0' in (await client.get("/metrics")).text
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/healthz")


async def test_readiness_names_redis_when_it_is_down_while_the_process_stays_live(pg_pool: asyncpg.Pool) -> None:
    dead = connect_redis(f"redis://127.0.0.1:{free_port()}/0")
    port = free_port()
    try:
        async with (
            ops_endpoint(OpsEndpointFields(ops_port=port), dead, pg_pool, Metrics(), "test"),
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client,
        ):
            assert (await client.get("/healthz")).status_code == 200
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            assert ready.json() == {"status": "unavailable", "redis": "down", "postgres": "ok"}
    finally:
        await dead.aclose()


async def test_port_zero_serves_nothing(redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    async with ops_endpoint(OpsEndpointFields(ops_port=0), redis, pg_pool, Metrics(), "test"):
        pass


async def test_a_taken_port_fails_the_start(redis: aioredis.Redis, pg_pool: asyncpg.Pool) -> None:
    port = free_port()
    async with ops_endpoint(OpsEndpointFields(ops_port=port), redis, pg_pool, Metrics(), "first"):
        with pytest.raises(OSError):
            async with ops_endpoint(OpsEndpointFields(ops_port=port), redis, pg_pool, Metrics(), "second"):
                pass


async def test_sigterm_drains_the_service_and_probes_answer_until_it_has(redis_url: str, database_url: str) -> None:
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.ops_child",
        str(port),
        redis_url,
        database_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert await child.stdout.readline() == b"serving\n"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await eventually(lambda: _answers(client), 10)
            assert "aob_child_total 1.0" in (await client.get("/metrics")).text
            child.send_signal(signal.SIGTERM)
            # The service's own SIGTERM handler runs, and uvicorn does not take the signal too: an endpoint that
            # did would stop within its 0.1 s tick, while the service drains for as long as the test keeps its stdin.
            assert await child.stdout.readline() == b"draining\n"
            for _ in range(DRAIN_PROBES):
                assert (await client.get("/healthz")).status_code == 200
                await asyncio.sleep(0.05)
        child.stdin.close()
        assert await asyncio.wait_for(child.stdout.read(), 30) == b"stopped\n"
        assert await child.wait() == 0
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()


async def _answers(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/healthz")).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    ("command", "metric"),
    [(["coordinator"], "aob_coordinator_batch_seconds"), (["worker", "http"], "aob_consumer_errors_total")],
)
async def test_coordinators_and_workers_serve_it_on_aob_ops_port(
    deployment: Deployment, tmp_path: Path, command: list[str], metric: str
) -> None:
    port = free_port()
    service = ServiceProcess(command, chaos_env(deployment, AOB_OPS_PORT=str(port)), tmp_path / "service.log")
    service.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await eventually(lambda: _answers(client), 30)
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            assert metric in (await client.get("/metrics")).text
    finally:
        assert service.stop() == 0, service.log_tail()
