"""``aob up`` as a real process, and the supervisor's restart and stop behaviour.

``AOB_UP_SERVICES=""`` makes ``aob up`` run only the embedded servers and migrations, so that test does not
depend on the services; the full-stack test passes whether the services run or crash-loop, as long as
SIGTERM stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest
import redis.asyncio as aioredis

from common.errors import ConfigError
from common.keys import Keys
from common.redis_client import connect_redis
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_run
from common.workflow.compiler import compile_definition
from devstack.supervisor import SERVICES, ChildSpec, Supervisor, parse_services
from tests.support.engine import chain
from tests.support.eventually import eventually

REPO_ROOT = Path(__file__).resolve().parents[4]
AOB = (sys.executable, "-c", "import sys; from orchestrator.cli import main; sys.exit(main())")


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def gone(pids: list[int]) -> None:
    """Wait until none of ``pids`` runs: a SIGKILLed orphan dies a moment after the signal is sent."""

    async def check() -> bool:
        assert [pid for pid in pids if alive(pid)] == []
        return True

    await eventually(check, timeout_s=5)


def descendants(pid: int) -> list[int]:
    return [child.pid for child in psutil.Process(pid).children(recursive=True)]


class AobUp:
    """One ``aob up`` process with its output in files, so nothing blocks on a full pipe."""

    def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
        self.out = tmp_path / "up.out"
        self.err = tmp_path / "up.err"
        base = {k: v for k, v in os.environ.items() if not k.startswith("AOB_")}
        base.update(AOB_DATA_DIR=str(tmp_path / "data"), AOB_LOG_JSON="false", **env)
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen([*AOB, "up", *args], cwd=REPO_ROOT, env=base, stdout=out, stderr=err)

    def output(self) -> str:
        return self.out.read_text()

    async def ready(self) -> dict[str, str]:
        async def check() -> str:
            assert self.proc.poll() is None, f"aob up exited with {self.proc.returncode}: {self.err.read_text()}"
            text = self.output()
            assert "aob up: ready" in text, text
            return text

        text = await eventually(check, timeout_s=60)
        return dict(re.findall(r"^(redis|postgres|admin key|migrations applied): (\S+)", text, re.MULTILINE))

    async def stop(self, timeout_s: float) -> int:
        self.proc.send_signal(signal.SIGTERM)

        async def exited() -> int | None:
            code = self.proc.poll()
            return None if code is None else code + 1000  # truthy even for exit code 0

        return await eventually(exited, timeout_s=timeout_s) - 1000

    def kill(self) -> None:
        if self.proc.poll() is None:
            for pid in descendants(self.proc.pid):
                psutil.Process(pid).kill()
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def up_factory(tmp_path: Path) -> Iterator[type[AobUp]]:
    started: list[AobUp] = []

    class Tracked(AobUp):
        def __init__(self, tmp_path: Path, *args: str, **env: str) -> None:
            super().__init__(tmp_path, *args, **env)
            started.append(self)

    yield Tracked
    for up in started:
        up.kill()


@pytest.mark.timeout(180)
async def test_up_starts_embedded_servers_migrates_and_stops_on_sigterm(
    tmp_path: Path, up_factory: type[AobUp]
) -> None:
    up = up_factory(tmp_path, AOB_UP_SERVICES="")

    found = await up.ready()

    assert found["migrations applied"].startswith("001_initial")
    assert found["admin key"].startswith("aob_")
    assert not re.search(r":(6379|5432)/", found["redis"] + found["postgres"])
    client = aioredis.Redis.from_url(found["redis"])
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()
    conn = await asyncpg.connect(found["postgres"])
    try:
        assert await conn.fetchval("SELECT name FROM schema_migrations ORDER BY name LIMIT 1") == "001_initial"
    finally:
        await conn.close()
    children = descendants(up.proc.pid)
    assert children

    assert await up.stop(timeout_s=30) == 0
    await gone(children)
    assert "aob up: stopped" in up.output()


async def test_up_uses_configured_servers_without_embedding(
    tmp_path: Path, up_factory: type[AobUp], redis_url: str, database_url: str, db_schema: str
) -> None:
    up = up_factory(
        tmp_path,
        AOB_UP_SERVICES="",
        AOB_REDIS_URL=redis_url,
        AOB_DATABASE_URL=database_url,
        AOB_DB_SCHEMA=db_schema,
        AOB_ADMIN_KEY="k-test",
    )

    found = await up.ready()

    assert (found["redis"], found["postgres"]) == (redis_url, database_url)
    assert "starting embedded servers" not in up.output()
    assert "admin key: from AOB_ADMIN_KEY" in up.output()
    assert not (tmp_path / "data").exists()
    assert await up.stop(timeout_s=30) == 0


@pytest.mark.timeout(180)
async def test_up_runs_every_service_and_stops_them_all(tmp_path: Path, up_factory: type[AobUp]) -> None:
    # Ports 0: the API and fanout bind free ports, so this never clashes with anything already listening.
    up = up_factory(tmp_path, AOB_API_PORT="0", AOB_FANOUT_PORT="0", AOB_UP_STOP_TIMEOUT_S="15")
    redis_port = int(urlsplit((await up.ready())["redis"]).port or 0)

    async def services_settled() -> list[int]:
        # Every service is up once it is connected to Redis; one that exited (a crash loop) fails the test.
        log = up.err.read_text()
        assert_no_service_exited(log)
        settled = {}
        for proc in psutil.Process(up.proc.pid).children():
            with contextlib.suppress(psutil.Error):
                argv = proc.cmdline()
                if "orchestrator.cli import main" not in " ".join(argv):
                    continue
                # The orchestrator's API processes (AOB_API_WORKERS) are its children: they hold its connections.
                connections = [c for p in (proc, *proc.children(recursive=True)) for c in p.net_connections("tcp")]
                if any(c.raddr and c.raddr.port == redis_port for c in connections):
                    settled[" ".join(argv[3:])] = proc.pid
        unsettled = sorted({" ".join(s) for s in SERVICES} - set(settled))
        assert not unsettled, f"not connected to Redis: {unsettled}; log ends with:\n{log[-3000:]}"
        return list(settled.values())

    await eventually(services_settled, timeout_s=60)
    children = descendants(up.proc.pid)

    assert_no_service_exited(up.err.read_text())
    assert await up.stop(timeout_s=60) == 0
    await gone(children)


def assert_no_service_exited(log: str) -> None:
    """Fail naming each service ``aob up`` saw exit (and restarted) while it should have kept running."""
    exits = re.findall(r"service (.+?) \(pid \d+\) exited with code -?\d+", log)
    assert not exits, f"services exited: {sorted(set(exits))}; log ends with:\n{log[-3000:]}"


def test_a_crash_looping_service_is_caught() -> None:
    log = "aob up: ready\nservice worker agent (pid 41) exited with code 1; restarting in 0.5s\n"
    with pytest.raises(AssertionError, match="services exited: \\['worker agent'\\]"):
        assert_no_service_exited(log)
    assert_no_service_exited("aob up: ready\n")


def test_parse_services() -> None:
    assert parse_services(None) == SERVICES
    assert parse_services("") == ()
    assert parse_services("coordinator, worker builtin") == (("coordinator",), ("worker", "builtin"))
    with pytest.raises(ConfigError, match="AOB_UP_SERVICES: unknown service 'worker'"):
        parse_services("worker")


def _python(code: str) -> tuple[str, ...]:
    return (sys.executable, "-c", code)


async def test_supervisor_restarts_crashed_children_and_stops_stubborn_ones(tmp_path: Path) -> None:
    crashes = tmp_path / "crashes"
    stubborn_ready = tmp_path / "stubborn"
    grandchild_file = tmp_path / "grandchild"
    crasher = f"open({str(crashes)!r}, 'a').write('x'); raise SystemExit(3)"
    # Ignores SIGTERM and leaves a grandchild behind: only SIGKILL of its process group ends both.
    stubborn = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
        f"open({str(grandchild_file)!r}, 'w').write(str(child.pid))\n"
        f"open({str(stubborn_ready)!r}, 'w').write('ready')\n"
        "time.sleep(120)\n"
    )
    polite = "import signal, time; signal.signal(signal.SIGTERM, lambda *a: exit(0)); time.sleep(120)"
    supervisor = Supervisor(
        [
            ChildSpec("crasher", _python(crasher)),
            ChildSpec("stubborn", _python(stubborn)),
            ChildSpec("polite", _python(polite)),
        ],
        dict(os.environ),
        stop_timeout_s=1.0,
        restart_backoff_s=0.01,
        max_restart_backoff_s=0.05,
    )
    running = asyncio.create_task(supervisor.run())

    async def restarted_and_ready() -> bool:
        assert supervisor.starts["crasher"] >= 3
        assert crashes.exists() and len(crashes.read_text()) >= 3
        assert stubborn_ready.exists()
        return len(supervisor.pids) >= 2

    await eventually(restarted_and_ready, timeout_s=30)
    assert supervisor.starts["stubborn"] == 1 and supervisor.starts["polite"] == 1
    pids = [supervisor.pids["stubborn"], supervisor.pids["polite"], int(grandchild_file.read_text())]

    await supervisor.shutdown()
    await asyncio.wait_for(running, timeout=30)
    await supervisor.shutdown()

    await gone(pids)
    assert supervisor.pids == {}


@pytest.mark.timeout(240)
async def test_up_scaled_runs_two_coordinators_that_share_the_shards_on_the_embedded_redis(
    tmp_path: Path, up_factory: type[AobUp]
) -> None:
    up = up_factory(tmp_path, "--scale", "coordinator=2,worker.builtin=2", AOB_UP_SERVICES="coordinator,worker builtin")
    found = await up.ready()
    assert "services: coordinator, coordinator #2, worker builtin, worker builtin #2" in up.output()
    client = connect_redis(found["redis"])
    keys = Keys()
    try:
        # The embedded Redis (6.2) runs the sharded engine as a cluster would: one slot per script.
        async def leases_shared() -> bool:
            owners = [await client.get(shard.lease) for shard in keys.all_shards()]
            return None not in owners and len(set(owners)) == 2

        await eventually(leases_shared, timeout_s=60)
        scripts = Scripts(client, keys)
        ir = compile_definition(chain(3)).ir
        run_ids = [uuid.uuid4().hex for _ in range(8)]
        for run_id in run_ids:
            start = RunStart(run_id, "default", "w", "chain", 1, {})
            await start_run(scripts, start, ir, max_agents=5)

        async def ended() -> list[str]:
            statuses = [await client.hget(keys.run(run_id), "status") for run_id in run_ids]
            assert statuses == ["succeeded"] * len(run_ids), statuses
            return statuses

        await eventually(ended, timeout_s=60)
    finally:
        await client.aclose()
    assert await up.stop(timeout_s=60) == 0
