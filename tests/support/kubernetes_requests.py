"""The requests the agent kubernetes runtime sends to the API server, recorded by running it over the real Kubernetes
client whose transport answers from a script, and what RBAC permission each request needs."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import kubernetes.stream
from kubernetes import client
from kubernetes.stream.stream import _websocket_request

from common.settings import WorkerSettings
from workers.agent import RuntimeJob
from workers.agent._runtime_kubernetes import KubernetesRuntime

_HOST = "https://kubernetes.invalid"
_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<rest>.+)$")
_JOB = RuntimeJob("RUN0123456789abcdef", "agent", 1, b'{"prompt": "p"}\n', 30.0)


class Permission(NamedTuple):
    """What RBAC checks for one request: API group, resource (``pods/log`` for a subresource), verb, namespace."""

    group: str
    resource: str
    verb: str
    namespace: str


def permission(method: str, url: str, query: dict[str, str]) -> Permission:
    """The permission the API server checks for ``method url`` (Kubernetes' request-to-verb mapping)."""
    match = _PATH.match(urlsplit(url).path)
    if match is None:
        raise ValueError(f"not a namespaced resource request: {method} {url}")
    resource, *rest = match["rest"].split("/")
    name = rest[0] if rest else None
    if len(rest) > 1:
        resource = f"{resource}/{rest[1]}"
    if method == "GET":
        verb = "get" if name else ("watch" if query.get("watch") in ("true", "1") else "list")
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PATCH": "patch", "PUT": "update"}[method]
    return Permission(match["group"] or "", resource, verb, match["ns"])


class _Response:
    """What the client's REST layer returns: JSON data to deserialize, or a body to stream (the pod log)."""

    def __init__(self, data: dict[str, Any], chunks: list[bytes] | None = None) -> None:
        self.status = 200
        self.reason = "OK"
        self.data = json.dumps(data)
        self._chunks = chunks or []

    def getheaders(self) -> dict[str, str]:
        return {}

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return default

    def stream(self, amt: int) -> Iterator[bytes]:
        yield from self._chunks


class _Stdin:
    def write_stdin(self, data: str) -> None:
        pass

    def close(self) -> None:
        pass


_CONTAINER = {"name": "agent", "image": "aob", "imageID": "", "ready": False, "restartCount": 0}


def _reply(method: str, url: str) -> _Response:
    path = urlsplit(url).path
    if path.endswith("/log"):
        return _Response({}, [b"2026-01-01T10:00:00Z done\n"])
    if method == "GET" and path.endswith("/pods"):
        return _Response({"items": [{"metadata": {"name": "p-1"}, "status": {"phase": "Running"}}]})
    if method == "GET" and "/pods/" in path:
        done = _CONTAINER | {"state": {"terminated": {"exitCode": 0}}}
        return _Response({"metadata": {"name": "p-1"}, "status": {"phase": "Succeeded", "containerStatuses": [done]}})
    return _Response({"metadata": {"name": path.rsplit("/", 1)[-1], "uid": "uid-1"}})


class RecordingApi:
    """A real ``ApiClient`` (with Core, Batch and Networking APIs over it) whose HTTP and websocket transport records
    every request and answers a one-pod Job that prints one line and exits 0."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.api_client = client.ApiClient(client.Configuration(host=_HOST))
        self.api_client.request = self._request  # type: ignore[method-assign]
        self.core = client.CoreV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.networking = client.NetworkingV1Api(self.api_client)

    def _request(self, method: str, url: str, query_params: Any = None, **kwargs: Any) -> _Response:
        self.requests.append((method, url, dict(query_params or [])))
        return _reply(method, url)

    def websocket_call(self, configuration: Any, method: str, url: str, **kwargs: Any) -> _Stdin:
        """Stands for ``kubernetes.stream.ws_client.websocket_call``: the attach is a websocket upgrade of a GET."""
        self.requests.append((method, url, dict(kwargs.get("query_params") or [])))
        return _Stdin()

    def permissions(self) -> set[Permission]:
        return {permission(method, url, query) for method, url, query in self.requests}


async def runtime_permissions(namespace: str, monkeypatch: Any) -> set[Permission]:
    """The permissions one agent execution run to its end, and one killed, need in ``namespace``."""
    api = RecordingApi()
    monkeypatch.setattr(kubernetes.stream, "stream", functools.partial(_websocket_request, api.websocket_call, None))
    settings = WorkerSettings(agent_k8s_namespace=namespace)
    finished = KubernetesRuntime(settings, api.core, api.batch, api.networking, poll_s=0.001)
    lines = [line async for line in await finished.start(_JOB)]
    if lines != ["done"] or await finished.wait() != 0:
        raise AssertionError(f"the scripted execution did not run to its end: {lines}")
    await finished.close()
    killed = KubernetesRuntime(settings, api.core, api.batch, api.networking, poll_s=0.001)
    await killed.start(_JOB)
    await killed.kill()
    return api.permissions()
