"""The ``docker`` runtime: the agent program in a container (Docker API; Podman's works too), removed after.

The job reaches the program through a read-only mounted file fed to its stdin, never through the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
from docker.errors import DockerException, NotFound
from docker.models.containers import Container

from common.settings import AgentNodeFields
from workers.agent._lines import LineSplitter, chunks_from_thread, stderr_record
from workers.agent._runtime_api import RuntimeFailure, RuntimeJob

logger = logging.getLogger(__name__)

JOB_DIR = "/run/aob"
JOB_FILE = f"{JOB_DIR}/job.json"
_STDERR_TAIL_LINES = 200
_PIDS_LIMIT = 256


def docker_client(settings: AgentNodeFields) -> docker.DockerClient:
    """A client for ``agent_docker_url``, or for the environment's engine (``DOCKER_HOST``) when unset."""
    try:
        if settings.agent_docker_url:
            return docker.DockerClient(base_url=settings.agent_docker_url)
        return docker.from_env()
    except DockerException as exc:
        raise RuntimeFailure(f"docker runtime: no container engine at {settings.agent_docker_url!r}: {exc}") from exc


def stdin_from_job_file(command: tuple[str, ...]) -> list[str]:
    """``command`` run by a shell that feeds it the mounted job file as stdin."""
    return ["/bin/sh", "-c", f'exec "$@" < {JOB_FILE}', "sh", *command]


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
    """One container per execution: limited memory and CPU, no privileges, ``init`` so a kill is prompt."""

    def __init__(self, settings: AgentNodeFields, client: docker.DockerClient) -> None:
        self._settings = settings
        self._client = client
        self._container: Container | None = None
        self._job_dir: Path | None = None

    def container_options(self, job: RuntimeJob, job_dir: Path) -> dict[str, Any]:
        """The ``containers.create`` arguments for ``job`` with its job file in ``job_dir``."""
        s = self._settings
        return {
            "image": s.agent_docker_image,
            "command": stdin_from_job_file(s.agent_docker_command),
            "volumes": {str(job_dir): {"bind": JOB_DIR, "mode": "ro"}, **parse_mounts(s.agent_docker_mounts)},
            "working_dir": s.agent_docker_workdir,
            "environment": {"PYTHONUNBUFFERED": "1"},
            "mem_limit": s.agent_docker_memory,
            "nano_cpus": int(s.agent_docker_cpus * 1e9),
            "pids_limit": _PIDS_LIMIT,
            "network_mode": s.agent_docker_network,
            "init": True,
            "privileged": False,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "labels": {"aob.run_id": job.run_id, "aob.node_id": job.node_id, "aob.attempt": str(job.attempt)},
            "detach": True,
        }

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        self._job_dir = Path(tempfile.mkdtemp(prefix="aob-agent-"))  # 0700: only the worker's user reads the job
        job_file = self._job_dir / "job.json"
        job_file.touch(mode=0o600)
        job_file.write_bytes(job.payload)
        options = self.container_options(job, self._job_dir)
        try:
            self._container = await asyncio.to_thread(self._client.containers.create, **options)
            await asyncio.to_thread(self._container.start)
        except DockerException as exc:
            raise RuntimeFailure(f"docker runtime: could not start {options['image']!r}: {exc}") from exc
        return self._lines(self._container)

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
        container, self._container = self._container, None
        if container is not None:
            try:
                await asyncio.to_thread(container.remove, force=True)
            except NotFound:
                pass
            except DockerException:
                logger.exception("docker runtime: container %s was not removed", container.id)
        if self._job_dir is not None:
            shutil.rmtree(self._job_dir, ignore_errors=True)
            self._job_dir = None
