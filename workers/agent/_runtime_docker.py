"""The ``docker`` runtime: the agent program in a container (Docker API; Podman's works too), removed after.

The container holds no authority: a non-root user, a read-only root filesystem with a small tmpfs on ``/tmp``, no
network (``network_mode: none``), no capabilities, ``no-new-privileges``. The job and the call replies reach the
program on its stdin through an attach socket; its stdout is followed through the log stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import docker
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from common.settings import AgentNodeFields
from workers.agent._lines import LineSplitter, chunks_from_thread, stderr_record
from workers.agent._runtime_api import RuntimeFailure, RuntimeJob

logger = logging.getLogger(__name__)

_STDERR_TAIL_LINES = 200
_PIDS_LIMIT = 256
TMPFS = {"/tmp": "rw,nosuid,nodev,noexec,size=64m"}


def docker_client(settings: AgentNodeFields) -> docker.DockerClient:
    """A client for ``agent_docker_url``, or for the environment's engine (``DOCKER_HOST``) when unset."""
    try:
        if settings.agent_docker_url:
            return docker.DockerClient(base_url=settings.agent_docker_url)
        return docker.from_env()
    except DockerException as exc:
        raise RuntimeFailure(f"docker runtime: no container engine at {settings.agent_docker_url!r}: {exc}") from exc


def parse_mounts(mounts: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """``host:container[:ro|rw]`` strings as the SDK's ``volumes`` mapping."""
    volumes: dict[str, dict[str, str]] = {}
    for mount in mounts:
        parts = mount.split(":")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise RuntimeFailure(f"agent_docker_mounts: expected host:container[:ro|rw], got {mount!r}")
        volumes[parts[0]] = {"bind": parts[1], "mode": parts[2] if len(parts) == 3 else "rw"}
    return volumes


class DockerRuntime:
    """One container per execution: limited memory and CPU, no authority (see the module), ``init`` so a kill is
    prompt."""

    def __init__(self, settings: AgentNodeFields, client: docker.DockerClient) -> None:
        self._settings = settings
        self._client = client
        self._container: Container | None = None
        self._stdin: socket.socket | None = None

    def container_options(self, job: RuntimeJob) -> dict[str, Any]:
        """The ``containers.create`` arguments for ``job``."""
        s = self._settings
        return {
            "image": s.agent_docker_image,
            "command": list(s.agent_docker_command),
            "volumes": parse_mounts(s.agent_docker_mounts),
            "working_dir": s.agent_docker_workdir,
            "environment": {**job.environment, "PYTHONUNBUFFERED": "1"},
            "stdin_open": True,
            "user": s.agent_docker_user,
            "read_only": True,
            "tmpfs": dict(TMPFS),
            "mem_limit": s.agent_docker_memory,
            "nano_cpus": int(s.agent_docker_cpus * 1e9),
            "pids_limit": _PIDS_LIMIT,
            "network_mode": "none",
            "init": True,
            "privileged": False,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "labels": {"aob.run_id": job.run_id, "aob.node_id": job.node_id, "aob.attempt": str(job.attempt)},
            "detach": True,
        }

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        options = self.container_options(job)
        try:
            self._container = await asyncio.to_thread(self._client.containers.create, **options)
            # Attached before the start, as ``docker run -i`` does, so nothing the program reads is missed.
            self._stdin = await asyncio.to_thread(self._attach_stdin, self._container)
            await asyncio.to_thread(self._container.start)
        except DockerException as exc:
            raise RuntimeFailure(f"docker runtime: could not start {options['image']!r}: {exc}") from exc
        await self.send(job.payload)
        return self._lines(self._container)

    def _attach_stdin(self, container: Container) -> socket.socket:
        attached = self._client.api.attach_socket(str(container.id), params={"stdin": 1, "stream": 1})
        # The SDK hands back the HTTP response's socket (wrapped in a SocketIO for plain sockets).
        raw = getattr(attached, "_sock", attached)
        if not isinstance(raw, socket.socket):
            raise RuntimeFailure(f"docker runtime: the attach socket is a {type(raw).__name__}, not a socket")
        return raw

    async def send(self, data: bytes) -> None:
        if self._stdin is None:
            raise RuntimeFailure("docker runtime: send() before start()")
        try:
            await asyncio.to_thread(self._stdin.sendall, data)
        except OSError as exc:
            raise RuntimeFailure(f"docker runtime: the program's stdin broke off: {exc}") from exc

    async def _lines(self, container: Container) -> AsyncIterator[str]:
        splitter = LineSplitter(self._settings.agent_max_line_bytes)

        def follow() -> Iterator[bytes]:
            return container.logs(stream=True, follow=True, stdout=True, stderr=False)

        async for chunk in chunks_from_thread(follow):
            for line in splitter.feed(chunk):
                yield line
        for line in splitter.end():
            yield line
        # stderr (a traceback, the shell's complaint) only after the fact: merging it live would cut lines apart.
        try:
            tail = await asyncio.to_thread(container.logs, stdout=False, stderr=True, tail=_STDERR_TAIL_LINES)
        except DockerException:
            return
        for line in tail.decode("utf-8", errors="replace").splitlines():
            yield stderr_record(line)

    async def wait(self) -> int:
        if self._container is None:
            raise RuntimeFailure("docker runtime: wait() before start()")
        try:
            status = await asyncio.to_thread(self._container.wait)
        except DockerException as exc:
            raise RuntimeFailure(f"docker runtime: lost the container: {exc}") from exc
        return int(status.get("StatusCode", -1))

    async def kill(self) -> None:
        if self._container is None:
            return
        with contextlib.suppress(DockerException):
            await asyncio.to_thread(self._container.kill)

    async def close(self) -> None:
        if self._stdin is not None:
            with contextlib.suppress(OSError):
                self._stdin.close()
            self._stdin = None
        container, self._container = self._container, None
        if container is not None:
            try:
                await asyncio.to_thread(container.remove, force=True)
            except NotFound:
                pass
            except DockerException:
                logger.exception("docker runtime: container %s was not removed", container.id)
