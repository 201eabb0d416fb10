"""A real local Redis Cluster for tests: three primaries and three replicas from the machine's ``redis-server`` (else
the embedded one ``aob up`` runs).

Each node runs on a free port in a temporary directory with ``cluster-enabled yes``; ``redis-cli --cluster create``
joins them with one replica per primary. A test may kill a primary: its replica is promoted by the cluster itself.
"""

from __future__ import annotations

import functools
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from devstack.embedded import redis_server_binary

NODES = 6
# A dead primary is failed over after this; short so failover tests stay short.
NODE_TIMEOUT_MS = 1000


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher, which Redis requires to exist) is free too."""
    for _ in range(1000):
        port = random.randint(20_000, 55_000)
        if _free(port) and _free(port + 10_000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@functools.cache
def redis_binaries() -> tuple[str, str]:
    """``redis-server`` and ``redis-cli``: the machine's, else the embedded Redis 6.2 that ``aob up`` runs (a machine
    with only Python, as README promises, has that one)."""
    server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    if server is None or cli is None:
        return str(redis_server_binary()), str(redis_server_binary().with_name("redis-cli"))
    return server, cli


@dataclass
class LocalRedisCluster:
    """Six ``redis-server`` processes forming one cluster; ``url`` is what ``AOB_REDIS_URL`` takes."""

    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aob-redis-cluster-")))
    ports: list[int] = field(default_factory=list)
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports[:3]) + "/"

    def start(self) -> LocalRedisCluster:
        """Start the nodes and form the cluster; returns once every slot is served. Raises ``RuntimeError`` (and
        stops what it started)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalRedisCluster:
        server, cli = redis_binaries()
        self.ports = []
        while len(self.ports) < NODES:
            port = cluster_port()
            if not {port, port + 10_000} & {p for q in self.ports for p in (q, q + 10_000)}:
                self.ports.append(port)
        for port in self.ports:
            node_dir = self.directory / str(port)
            node_dir.mkdir()
            args = [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
            args += ["--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS)]
            args += ["--save", "", "--appendonly", "no", "--dir", str(node_dir)]
            # Replicas sync at once and may always take over (a busy test machine delays their pings).
            args += ["--repl-diskless-sync-delay", "0", "--cluster-replica-validity-factor", "0"]
            log = (node_dir / "redis.log").open("ab")
            self.processes[port] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        for port in self.ports:
            self._wait(lambda port=port: self._cli(port, "ping") == "PONG", f"node {port} to answer")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "1", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_healthy()
        # A replica that has not synced with its primary cannot take over from it.
        self._wait(self._replicas_synced, "every replica to sync")
        return self

    def wait_healthy(self, timeout_s: float = 60) -> None:
        """Wait until every live node says the cluster is ok (all slots served)."""
        for port in self.live_ports():
            self._wait(
                lambda port=port: "cluster_state:ok" in self._cli(port, "cluster", "info"), "cluster ok", timeout_s
            )

    def wait_failover(self, timeout_s: float = 60) -> None:
        """Wait until a replica replaced every killed primary (three live primaries) and every slot is served."""
        self._wait(lambda: len(self.primaries()) == NODES // 2, "a replica to take over", timeout_s)
        self.wait_healthy(timeout_s)

    def primaries(self) -> list[int]:
        """The ports of the live nodes that are primaries now."""
        return [port for port in self.live_ports() if "role:master" in self._cli(port, "info", "replication")]

    def primary_of_slot(self, slot: int) -> int:
        """The port of the primary serving ``slot`` now."""
        for port in self.primaries():
            for line in self._cli(port, "cluster", "nodes").splitlines():
                fields = line.split()
                if "myself" in fields[2] and "master" in fields[2]:
                    ranges = [r for r in fields[8:] if not r.startswith("[")]
                    for r in ranges:
                        low, _, high = r.partition("-")
                        if int(low) <= slot <= int(high or low):
                            return port
        raise RuntimeError(f"no primary serves slot {slot}")

    @classmethod
    def wait_answers(cls, port: int) -> None:
        """Wait until the server (or Sentinel) on ``port`` answers a ping."""
        cls._wait(lambda: cls._cli(port, "ping") == "PONG", f"port {port} to answer")

    def kill(self, port: int) -> None:
        """SIGKILL one node (a replica of a killed primary takes over after the node timeout)."""
        process = self.processes.pop(port)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def _replicas_synced(self) -> bool:
        infos = [self._cli(port, "info", "replication") for port in self.live_ports()]
        replicas = [info for info in infos if "role:slave" in info]
        return len(replicas) == NODES // 2 and all("master_link_status:up" in info for info in replicas)

    def live_ports(self) -> list[int]:
        return [port for port in self.ports if port in self.processes]

    def stop(self) -> None:
        """Stop every node and remove the directory."""
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.directory, ignore_errors=True)

    @staticmethod
    def _cli(port: int, *args: str) -> str:
        done = subprocess.run(
            [redis_binaries()[1], "-p", str(port), *args], capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip()

    @staticmethod
    def _wait(check: object, what: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if callable(check) and check():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis cluster: gave up waiting for {what} after {timeout_s:g}s")
