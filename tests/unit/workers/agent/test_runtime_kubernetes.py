"""The kubernetes runtime against a fake API: its Job and NetworkPolicy, the stdin attach, a broken log stream, pods
that never start."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from types import SimpleNamespace as NS
from typing import Any

import pytest
from urllib3.exceptions import ProtocolError

from common.settings import WorkerSettings
from workers.agent import RuntimeFailure, RuntimeJob
from workers.agent._runtime_kubernetes import KubernetesRuntime, timestamp_key

JOB = RuntimeJob("RUN0123456789abcdef", "agent", 2, json.dumps({"prompt": "p-secret"}).encode() + b"\n", 30.2)


def pod(phase: str, *, waiting: str | None = None, exit_code: int | None = None, name: str = "p-1") -> NS:
    state = NS(waiting=NS(reason=waiting) if waiting else None, terminated=None)
    if exit_code is not None:
        state = NS(waiting=None, terminated=NS(exit_code=exit_code))
    return NS(metadata=NS(name=name), status=NS(phase=phase, container_statuses=[NS(name="agent", state=state)]))


class FakeLog:
    """A streamed log response: yields ``chunks``, then raises ``error`` if given (a broken connection)."""

    def __init__(self, chunks: list[bytes], error: Exception | None = None) -> None:
        self.chunks = chunks
        self.error = error

    def stream(self, amt: int) -> Iterator[bytes]:
        yield from self.chunks
        if self.error is not None:
            raise self.error


class FakeStdin:
    """The attach websocket: records what is written to the program's stdin."""

    def __init__(self, requests: list[tuple[str, Any]]) -> None:
        self.requests = requests

    def write_stdin(self, data: str) -> None:
        self.requests.append(("stdin", data))

    def close(self) -> None:
        self.requests.append(("stdin_closed", None))


class FakeApi:
    """CoreV1Api + BatchV1Api + NetworkingV1Api + ApiClient in one: records every request and answers from scripted
    replies."""

    def __init__(self, pods: list[NS], logs: list[FakeLog], final: NS) -> None:
        self.requests: list[tuple[str, Any]] = []
        self._pods = pods
        self._logs = logs
        self._final = final
        self.api_client = self

    def create_namespaced_job(self, namespace: str, body: dict[str, Any]) -> NS:
        self.requests.append(("create_job", body))
        return NS(metadata=NS(uid="job-uid-1"))

    def create_namespaced_network_policy(self, namespace: str, body: dict[str, Any]) -> None:
        self.requests.append(("create_policy", body))

    def patch_namespaced_job(self, name: str, namespace: str, body: dict[str, Any]) -> None:
        self.requests.append(("patch_job", (name, body)))

    def attach(self, core: Any, pod: str, namespace: str) -> FakeStdin:
        self.requests.append(("attach", (pod, namespace)))
        return FakeStdin(self.requests)

    def list_namespaced_pod(self, namespace: str, label_selector: str) -> NS:
        self.requests.append(("list_pods", label_selector))
        current = self._pods.pop(0) if len(self._pods) > 1 else self._pods[0]
        return NS(items=[current])

    def call_api(self, path: str, method: str, **kw: Any) -> FakeLog:
        self.requests.append(("log", dict(kw["query_params"])))
        return self._logs.pop(0)

    def read_namespaced_pod(self, name: str, namespace: str) -> NS:
        self.requests.append(("read_pod", name))
        return self._final

    def delete_namespaced_job(self, name: str, namespace: str, propagation_policy: str) -> None:
        self.requests.append(("delete_job", (name, propagation_policy)))

    def sent(self, kind: str) -> list[Any]:
        return [body for what, body in self.requests if what == kind]


def runtime(api: FakeApi, **settings: Any) -> KubernetesRuntime:
    values = {"agent_k8s_namespace": "agents", "agent_k8s_image": "reg/aob-agent:1"} | settings
    return KubernetesRuntime(WorkerSettings(**values), api, api, api, poll_s=0.001, attach=api.attach)


async def collect(rt: KubernetesRuntime) -> list[str]:
    return [line async for line in await rt.start(JOB)]


def test_the_job_runs_once_with_deadline_and_ttl_and_takes_its_input_on_stdin() -> None:
    rt = runtime(FakeApi([], [], pod("Succeeded")), agent_k8s_ttl_after_finished_s=120)
    job = rt.job_manifest(JOB, "aob-agent-x")
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 31
    assert spec["ttlSecondsAfterFinished"] == 120
    pod_spec = spec["template"]["spec"]
    assert pod_spec["restartPolicy"] == "Never"
    container = pod_spec["containers"][0]
    assert container["image"] == "reg/aob-agent:1"
    assert container["command"] == ["python3", "-m", "workers.agent.program"]
    assert container["stdin"] is True and container["stdinOnce"] is True
    # The job never travels in the manifest or the environment.
    assert "p-secret" not in json.dumps(job)


async def test_the_job_starts_suspended_until_its_network_policy_exists_then_gets_its_job_on_stdin() -> None:
    api = FakeApi([pod("Running")], [FakeLog([b"2026-01-01T10:00:00Z done\n"])], pod("Succeeded", exit_code=0))
    rt = runtime(api)
    assert await collect(rt) == ["done"]
    order = [what for what, _ in api.requests if what != "list_pods"]
    assert order[:5] == ["create_job", "create_policy", "patch_job", "attach", "stdin"]
    assert api.sent("create_job")[0]["spec"]["suspend"] is True
    assert api.sent("patch_job") == [(rt.name, {"spec": {"suspend": False}})]
    (policy,) = api.sent("create_policy")
    assert (
        policy["metadata"]["ownerReferences"][0] | {"uid": "job-uid-1", "kind": "Job", "name": rt.name}
        == (policy["metadata"]["ownerReferences"][0])
    )
    assert api.sent("attach") == [("p-1", "agents")]
    assert api.sent("stdin") == [JOB.payload.decode()]
    await rt.send(b'{"v": 1, "id": 1}\n')
    assert api.sent("stdin")[-1] == '{"v": 1, "id": 1}\n'
    await rt.close()
    assert ("stdin_closed", None) in api.requests
    assert api.sent("delete_job") == [(rt.name, "Background")]


async def test_a_broken_log_stream_is_reopened_with_since_time_and_no_line_twice() -> None:
    logs = [
        FakeLog(
            [b"2026-01-01T10:00:00.1Z first\n2026-01-01T10:00:01.000000001Z second\n2026-01-01T10:00:01.5Z thi"],
            ProtocolError("connection broken"),
        ),
        # The reopened stream starts again at the whole second of the last line seen.
        FakeLog([b"2026-01-01T10:00:01.000000001Z second\n2026-01-01T10:00:01.5Z third\n2026-01-01T10:00:02Z end\n"]),
    ]
    api = FakeApi(
        [pod("Pending"), pod("Pending", waiting="ContainerCreating"), pod("Running")],
        logs,
        pod("Succeeded", exit_code=0),
    )
    rt = runtime(api)
    assert await collect(rt) == ["first", "second", "third", "end"]
    assert await rt.wait() == 0

    first, second = api.sent("log")
    assert first == {"container": "agent", "follow": "true", "timestamps": "true"}
    assert second["sinceTime"] == "2026-01-01T10:00:01Z"
    assert len(api.sent("list_pods")) == 3
    assert api.sent("list_pods")[0] == f"job-name={rt.name}"
    await rt.close()
    assert api.sent("delete_job") == [(rt.name, "Background")]


async def test_a_pod_that_never_starts_fails_at_the_start_timeout() -> None:
    api = FakeApi([pod("Pending", waiting="ContainerCreating")], [], pod("Pending"))
    rt = runtime(api, agent_k8s_pod_start_timeout_s=0.05)
    with pytest.raises(RuntimeFailure, match=r"did not start within 0.05s: pod p-1 is Pending \(ContainerCreating\)"):
        await rt.start(JOB)
    assert api.sent("log") == []
    await rt.close()
    assert api.sent("delete_job") == [(rt.name, "Background")]


async def test_an_image_that_cannot_be_pulled_fails_at_once() -> None:
    api = FakeApi([pod("Pending", waiting="ImagePullBackOff")], [], pod("Pending"))
    rt = runtime(api, agent_k8s_pod_start_timeout_s=60)
    with pytest.raises(RuntimeFailure, match="cannot start: pod p-1 is Pending \\(ImagePullBackOff\\)"):
        await rt.start(JOB)
    assert len(api.sent("list_pods")) == 1


async def test_a_pod_ended_by_its_deadline_reports_a_kill() -> None:
    failed = NS(metadata=NS(name="p-1"), status=NS(phase="Failed", container_statuses=[]))
    api = FakeApi([pod("Running")], [FakeLog([b"2026-01-01T10:00:00Z working\n"])], failed)
    rt = runtime(api)
    assert await collect(rt) == ["working"]
    assert await rt.wait() == -9


def test_timestamps_compare_by_instant_not_by_text() -> None:
    assert timestamp_key("2026-01-01T10:00:01.5Z") > timestamp_key("2026-01-01T10:00:01.000000001Z")
    assert timestamp_key("2026-01-01T10:00:01Z") < timestamp_key("2026-01-01T10:00:01.1Z")


def test_the_job_environment_reaches_the_container() -> None:
    traced = replace(JOB, environment={"TRACEPARENT": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    container = runtime(FakeApi([], [], pod("Succeeded"))).job_manifest(traced, "aob-agent-x")["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert {"name": "TRACEPARENT", "value": traced.environment["TRACEPARENT"]} in container["env"]
    assert {"name": "PYTHONUNBUFFERED", "value": "1"} in container["env"]
