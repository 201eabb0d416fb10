"""The ``kubernetes`` runtime: the agent program as a Job whose pod holds no authority, its stdin attached, its log
followed.

The pod runs as a non-root user (``runAsNonRoot``) under the runtime's default seccomp profile, with a read-only root
filesystem (a small memory ``emptyDir`` on ``/tmp``), no capabilities, no service-account token and no service links.
A NetworkPolicy owned by the Job denies all its traffic; the Job is created suspended and released only once the
policy exists, so the pod never runs without it, and Kubernetes deletes the policy with the Job (a crashed worker
leaves nothing behind beyond ``ttlSecondsAfterFinished``). No Secret is made: the job, which holds no credential,
and the call replies reach the program over an attach (websocket) to its stdin.

The log is read with timestamps; when the stream breaks it is reopened with ``sinceTime`` (whole seconds, as the
API takes it) and the lines already seen are skipped by their timestamps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from common.settings import AgentNodeFields
from workers.agent._lines import LineSplitter, chunks_from_thread
from workers.agent._runtime_api import RuntimeFailure, RuntimeJob

logger = logging.getLogger(__name__)

CONTAINER = "agent"
JOB_LABEL = "aob/job"
TMP_SIZE = "64Mi"
# Waiting reasons that will not fix themselves: fail at once rather than at the start timeout.
FATAL_WAITING = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError", "CreateContainerError"}
)
MAX_RECONNECTS = 20
_STATUS_WAIT_S = 30.0
_READ_BYTES = 65_536


def kubernetes_apis() -> tuple[Any, Any, Any]:
    """``(CoreV1Api, BatchV1Api, NetworkingV1Api)`` from the in-cluster service account, else from the kubeconfig."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        config.load_incluster_config()
    except ConfigException:
        config.load_kube_config()
    return client.CoreV1Api(), client.BatchV1Api(), client.NetworkingV1Api()


def attach_stdin(core: Any, pod: str, namespace: str) -> Any:
    """A websocket attached to the agent container's stdin (``kubernetes.stream``), for ``write_stdin``."""
    from kubernetes.stream import stream

    return stream(
        core.connect_get_namespaced_pod_attach,
        pod,
        namespace,
        container=CONTAINER,
        stdin=True,
        stdout=False,
        stderr=False,
        tty=False,
        _preload_content=False,
    )


def timestamp_key(ts: str) -> tuple[str, int]:
    """An RFC 3339 timestamp with optional fraction (``...:05.12Z``) as a sortable (seconds, nanoseconds) pair."""
    seconds, _, rest = ts.rstrip("Z").partition(".")
    digits = "".join(ch for ch in rest if ch.isdigit())
    return seconds, int((digits + "000000000")[:9])


def _is_gone(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


class KubernetesRuntime:
    """One Job per execution (``backoffLimit: 0``, ``activeDeadlineSeconds``, ``ttlSecondsAfterFinished``)."""

    def __init__(
        self,
        settings: AgentNodeFields,
        core: Any,
        batch: Any,
        networking: Any,
        *,
        poll_s: float = 0.5,
        attach: Any = attach_stdin,
    ) -> None:
        self._settings = settings
        self._core = core
        self._batch = batch
        self._networking = networking
        self._poll_s = poll_s
        self._attach = attach
        self._ns = settings.agent_k8s_namespace
        self.name: str | None = None
        self._pod: str | None = None
        self._stdin: Any = None

    def job_manifest(self, job: RuntimeJob, name: str) -> dict[str, Any]:
        """The Job running the program once, created suspended (see ``network_policy_manifest``)."""
        s = self._settings
        no_privileges = {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        container = {
            "name": CONTAINER,
            "image": s.agent_k8s_image,
            "command": list(s.agent_k8s_command),
            "env": [
                *({"name": name, "value": value} for name, value in job.environment.items()),
                {"name": "PYTHONUNBUFFERED", "value": "1"},
            ],
            # stdinOnce: the program's stdin ends when the worker's attach does.
            "stdin": True,
            "stdinOnce": True,
            "tty": False,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            "resources": {"limits": {"memory": s.agent_k8s_memory, "cpu": s.agent_k8s_cpu}},
            "securityContext": no_privileges,
        }
        labels = self._labels(job) | {JOB_LABEL: name}
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "suspend": True,
                "backoffLimit": 0,
                "activeDeadlineSeconds": max(1, math.ceil(job.deadline_s)),
                "ttlSecondsAfterFinished": s.agent_k8s_ttl_after_finished_s,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "enableServiceLinks": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": s.agent_k8s_run_as_user,
                            "runAsGroup": s.agent_k8s_run_as_user,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": TMP_SIZE}}],
                    },
                },
            },
        }

    def network_policy_manifest(self, job: RuntimeJob, name: str, job_uid: str) -> dict[str, Any]:
        """Deny every packet to and from the Job's pod; owned by the Job, so deleted with it."""
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job_uid, "blockOwnerDeletion": True}
        return {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "labels": self._labels(job), "ownerReferences": [owner]},
            "spec": {
                "podSelector": {"matchLabels": {JOB_LABEL: name}},
                "policyTypes": ["Ingress", "Egress"],
                "ingress": [],
                "egress": [],
            },
        }

    @staticmethod
    def _labels(job: RuntimeJob) -> dict[str, str]:
        return {"app.kubernetes.io/name": "aob-agent", "aob/node": job.node_id[:63], "aob/attempt": str(job.attempt)}

    async def start(self, job: RuntimeJob) -> AsyncIterator[str]:
        name = self.name = f"aob-agent-{job.run_id[:12].lower()}-{uuid.uuid4().hex[:8]}"
        try:
            created = await asyncio.to_thread(self._batch.create_namespaced_job, self._ns, self.job_manifest(job, name))
            policy = self.network_policy_manifest(job, name, str(created.metadata.uid))
            await asyncio.to_thread(self._networking.create_namespaced_network_policy, self._ns, policy)
            # Released only now: its pod never runs before the policy that cuts it off exists.
            await asyncio.to_thread(self._batch.patch_namespaced_job, name, self._ns, {"spec": {"suspend": False}})
        except Exception as exc:
            raise RuntimeFailure(f"kubernetes runtime: could not create Job {name}: {exc}") from exc
        self._pod = await self._wait_for_pod(name)
        try:
            self._stdin = await asyncio.to_thread(self._attach, self._core, self._pod, self._ns)
        except Exception as exc:
            raise RuntimeFailure(f"kubernetes runtime: could not attach to pod {self._pod}: {exc}") from exc
        await self.send(job.payload)
        return self._follow(self._pod)

    async def send(self, data: bytes) -> None:
        if self._stdin is None:
            raise RuntimeFailure("kubernetes runtime: send() before start()")
        try:
            await asyncio.to_thread(self._stdin.write_stdin, data.decode())
        except Exception as exc:
            raise RuntimeFailure(f"kubernetes runtime: the program's stdin broke off: {exc}") from exc

    async def _wait_for_pod(self, name: str) -> str:
        """The Job's pod once its container runs (or already ended); fails when it cannot or does not start."""
        deadline = time.monotonic() + self._settings.agent_k8s_pod_start_timeout_s
        seen = "no pod yet"
        while True:
            pods = await asyncio.to_thread(self._core.list_namespaced_pod, self._ns, label_selector=f"job-name={name}")
            for pod in pods.items:
                phase = pod.status.phase
                if phase in ("Running", "Succeeded", "Failed"):
                    return str(pod.metadata.name)
                reason = _waiting_reason(pod)
                seen = f"pod {pod.metadata.name} is {phase}" + (f" ({reason})" if reason else "")
                if reason in FATAL_WAITING:
                    raise RuntimeFailure(f"kubernetes runtime: Job {name} cannot start: {seen}")
            if time.monotonic() >= deadline:
                timeout_s = self._settings.agent_k8s_pod_start_timeout_s
                raise RuntimeFailure(f"kubernetes runtime: Job {name} did not start within {timeout_s:g}s: {seen}")
            await asyncio.sleep(self._poll_s)

    def _open_log(self, pod: str, since_time: str | None) -> Any:
        # The generated client has no ``sinceTime`` parameter; the API has, so the call is made by hand.
        query: list[tuple[str, str]] = [("container", CONTAINER), ("follow", "true"), ("timestamps", "true")]
        if since_time is not None:
            query.append(("sinceTime", since_time))
        return self._core.api_client.call_api(
            f"/api/v1/namespaces/{self._ns}/pods/{pod}/log",
            "GET",
            path_params={},
            query_params=query,
            header_params={"Accept": "*/*"},
            response_type="str",
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
        )

    async def _follow(self, pod: str) -> AsyncIterator[str]:
        last: tuple[str, int] | None = None
        seen_at_last = 0
        reconnects = 0
        while True:
            since = f"{last[0]}Z" if last is not None else None
            splitter = LineSplitter(self._settings.agent_max_line_bytes)
            skip = seen_at_last
            try:
                response = await asyncio.to_thread(self._open_log, pod, since)

                def chunks(stream: Any = response) -> Iterator[bytes]:
                    return stream.stream(_READ_BYTES)  # type: ignore[no-any-return]

                async for chunk in chunks_from_thread(chunks):
                    for raw in splitter.feed(chunk):
                        ts, _, line = raw.partition(" ")
                        key = timestamp_key(ts)
                        if last is not None and key < last:
                            continue
                        if key == last and skip > 0:
                            skip -= 1
                            continue
                        seen_at_last = seen_at_last + 1 if key == last else 1
                        last = key
                        yield line
            except Exception as exc:
                logger.warning("kubernetes runtime: log stream of %s broke (%s); reconnecting", pod, exc)
            else:
                if await self._finished(pod):
                    return
            reconnects += 1
            if reconnects > MAX_RECONNECTS:
                raise RuntimeFailure(f"kubernetes runtime: lost the log of pod {pod} {MAX_RECONNECTS} times")
            await asyncio.sleep(self._poll_s)

    async def _finished(self, pod: str) -> bool:
        try:
            status = await asyncio.to_thread(self._core.read_namespaced_pod, pod, self._ns)
        except Exception as exc:
            if _is_gone(exc):
                return True
            raise
        return status.status.phase in ("Succeeded", "Failed")

    async def wait(self) -> int:
        if self._pod is None:
            raise RuntimeFailure("kubernetes runtime: wait() before start()")
        deadline = time.monotonic() + _STATUS_WAIT_S
        while time.monotonic() < deadline:
            try:
                pod = await asyncio.to_thread(self._core.read_namespaced_pod, self._pod, self._ns)
            except Exception as exc:
                if _is_gone(exc):
                    return -9  # deleted under us: killed, or the deadline removed it
                raise
            for status in pod.status.container_statuses or []:
                terminated = status.state.terminated if status.state else None
                if status.name == CONTAINER and terminated is not None:
                    return int(terminated.exit_code)
            if pod.status.phase == "Failed":
                return -9  # activeDeadlineSeconds ended it before its container reported
            await asyncio.sleep(self._poll_s)
        raise RuntimeFailure(f"kubernetes runtime: pod {self._pod} reported no exit status within {_STATUS_WAIT_S:g}s")

    async def kill(self) -> None:
        await self._delete_job()

    async def close(self) -> None:
        if self._stdin is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._stdin.close)
            self._stdin = None
        # Its pod and NetworkPolicy go with it (the pod by propagation, the policy by its owner reference).
        await self._delete_job()

    async def _delete_job(self) -> None:
        if self.name is None:
            return
        try:
            await asyncio.to_thread(
                self._batch.delete_namespaced_job, self.name, self._ns, propagation_policy="Background"
            )
        except Exception as exc:
            if not _is_gone(exc):
                logger.warning("kubernetes runtime: Job %s was not deleted: %s", self.name, exc)


def _waiting_reason(pod: Any) -> str | None:
    for status in pod.status.container_statuses or []:
        if status.state is not None and status.state.waiting is not None:
            return str(status.state.waiting.reason)
    return None
