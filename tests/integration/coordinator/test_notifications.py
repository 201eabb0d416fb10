"""Notifications end to end: a failed run POSTed (signed, retried) to a local receiver, an approval request
e-mailed to a local SMTP server, and subscription input refused with 4xx."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
from collections.abc import AsyncIterator
from email import message_from_bytes
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from common.keys import Keys
from common.notifications import sign
from common.notifications.send import Sender
from coordinator._notifications import Notifier
from tests.support.api import Api, running_api
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from workers.hitl import HitlHandler

pytestmark = pytest.mark.timeout(30)
SUBSCRIPTIONS = "/api/v1/notifications/subscriptions"


class Receiver:
    """A tiny HTTP server: answers 500 to the first ``failures`` requests, then 200; keeps every request."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.port = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")[1:]
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append((headers, body))
        status = "500 Internal Server Error" if len(self.requests) <= self.failures else "200 OK"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        writer.close()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[Receiver]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        async with server:
            yield self


class Mailbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # the name aiosmtpd calls
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver(failures=2).serving() as server:
        yield server


@pytest.fixture
def mailbox() -> Any:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
async def api(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys, receiver: Receiver, mailbox: Any
) -> AsyncIterator[Api]:
    settings = deployment.replace(
        notify_allowlist=f"127.0.0.1:{receiver.port}",
        notify_poll_s=0.05,
        notify_retry_base_s=0.1,
        notify_ui_base_url="https://aob.example/",
        smtp_host="127.0.0.1",
        smtp_port=mailbox[1],
    )
    async with running_api(settings, redis, pg_pool, handlers=[HitlHandler(pg_pool, redis, keys)]) as client:
        # Two notifiers, as two coordinators would run: each event still reaches each subscription once.
        notifiers = [Notifier(settings.coordinator(), redis, pg_pool, keys, consumer=f"ntf-{i}") for i in range(2)]
        tasks = [asyncio.create_task(notifier.run()) for notifier in notifiers]
        yield client
        for notifier in notifiers:
            await notifier.shutdown()
        await asyncio.gather(*tasks)


async def _subscribe(api: Api, **body: Any) -> dict[str, Any]:
    response = await api.request("POST", SUBSCRIPTIONS, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_failed_run_is_posted_signed_and_retried(api: Api, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    sub = await _subscribe(api, channel="webhook", url=url, events=["run_failed"])
    assert len(sub["secret"]) == 64
    listed = (await api.request("GET", SUBSCRIPTIONS)).json()["items"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    assert (await api.request("GET", f"{SUBSCRIPTIONS}/{sub['id']}")).json()["target"] == url
    bad = {"id": "bad", "type": "transform", "config": {"output": "{{ inputs.missing }}"}}
    await api.create_workflow("broken", {"nodes": [bad], "edges": []})
    other = await api.create_workflow("other", {"nodes": [bad], "edges": []})
    elsewhere = await _subscribe(api, channel="webhook", url=url, events=["run_failed"], workflow_id=other["id"])
    run = await api.start_run("broken")

    async def three_attempts() -> list[dict[str, Any]]:
        response = await api.request("GET", f"{SUBSCRIPTIONS}/{sub['id']}/deliveries")
        items: list[dict[str, Any]] = response.json()["items"]
        assert [d["status"] for d in items] == ["delivered", "retrying", "retrying"], items
        return items

    log = await eventually(three_attempts, 15)
    assert [d["attempt"] for d in log] == [3, 2, 1]
    assert [d["response_code"] for d in log] == [200, 500, 500]
    assert {(d["event_type"], d["run_id"]) for d in log} == {("run_failed", run["id"])}
    assert len(receiver.requests) == 3
    # The other workflow's subscription was never enqueued (both were matched against the same event).
    assert (await api.request("GET", f"{SUBSCRIPTIONS}/{elsewhere['id']}/deliveries")).json()["items"] == []
    headers, body = receiver.requests[-1]
    expected = sign(sub["secret"], headers["x-aob-timestamp"], body)
    assert hmac.compare_digest(headers["x-aob-signature"], expected)
    payload = orjson.loads(body)
    assert (payload["type"], payload["run_id"], payload["tenant_id"]) == ("run_failed", run["id"], "default")


async def test_approval_request_is_emailed_with_its_link(api: Api, mailbox: Any) -> None:
    events = ["approval_requested", "approval_decided"]
    await _subscribe(api, channel="email", address="ops@example.com", events=events)
    gate = {"id": "g", "type": "hitl", "config": {"title": "ship?"}}
    await api.create_workflow("gate", {"nodes": [gate], "edges": []})
    run = await api.start_run("gate")

    async def mailed(count: int) -> list[Any]:
        assert len(mailbox[0].messages) == count
        return list(mailbox[0].messages)

    [envelope] = await eventually(lambda: mailed(1), 15)
    assert envelope.rcpt_tos == ["ops@example.com"]
    requested = message_from_bytes(envelope.content)
    assert requested["Subject"].startswith("[aob] Approval requested for node g")
    text = requested.get_payload()
    assert "https://aob.example/#/approvals" in text and run["id"] in text

    [approval] = (await api.request("GET", "/api/v1/approvals", params={"run_id": run["id"]})).json()["items"]
    alice = await api.new_key(role="editor", name="alice")
    path = f"/api/v1/approvals/{approval['id']}/decide"
    assert (await api.request("POST", path, key=alice, json={"decision": "approve"})).status_code == 200
    decided = message_from_bytes((await eventually(lambda: mailed(2), 15))[1].content)
    assert decided["Subject"].startswith("[aob] Approval approved for node g")


@pytest.mark.parametrize(
    "body",
    [
        {"channel": "webhook", "url": "http://10.0.0.1/x", "events": ["run_failed"]},
        {"channel": "webhook", "url": "http://169.254.169.254/latest", "events": ["run_failed"]},
        # A NAT64 form of a private address: refused by the HTTP node's rules, which notifications share.
        {"channel": "webhook", "url": "http://[64:ff9b::a00:1]/x", "events": ["run_failed"]},
        {"channel": "webhook", "url": "ftp://example.com/x", "events": ["run_failed"]},
        {"channel": "webhook", "address": "a@b.c", "events": ["run_failed"]},
        {"channel": "email", "address": "nobody", "events": ["run_failed"]},
        {"channel": "email", "address": "a@b.c", "events": []},
        {"channel": "email", "address": "a@b.c", "events": ["run_exploded"]},
    ],
)
async def test_bad_subscription_refused(api: Api, body: dict[str, Any]) -> None:
    response = await api.request("POST", SUBSCRIPTIONS, json=body)
    assert response.status_code == 422, response.text


async def test_subscription_pause_delete_and_tenant_scope(api: Api) -> None:
    sub = await _subscribe(api, channel="email", address="a@b.c", events=["run_succeeded"], format="slack")
    path = f"{SUBSCRIPTIONS}/{sub['id']}"
    assert (await api.request("PATCH", path, json={"paused": True})).json()["paused"] is True
    other = await api.new_key(tenant="other")
    assert (await api.request("GET", path, key=other)).status_code == 404
    assert (await api.request("DELETE", path)).status_code == 204
    assert (await api.request("GET", path)).status_code == 404


async def test_webhook_connects_only_to_the_address_its_check_resolved(
    deployment: Deployment, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A rebinding name: public for the check, then the loopback receiver for any later lookup.
    lookups: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host  # anyio looks names up as IDNA bytes
        if name != "hooks.example":
            return real_getaddrinfo(host, port, *args, **kwargs)
        lookups.append(name)
        address = "93.184.216.34" if len(lookups) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    sender = Sender(deployment.replace(notify_timeout_s=1.0).coordinator())
    try:
        url = f"http://hooks.example:{receiver.port}/x"
        outcome = await sender.webhook(url, "s", {"type": "run_failed", "run_id": "r"}, "json")
    finally:
        await sender.aclose()
    assert not outcome.delivered and receiver.requests == [] and lookups == ["hooks.example"]


async def test_send_test_goes_through_the_notifier(api: Api, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    # Paused: no run event reaches it, but a test asked for by hand does.
    sub = await _subscribe(api, channel="webhook", url=url, events=["run_failed"], format="slack", paused=True)
    path = f"{SUBSCRIPTIONS}/{sub['id']}"
    queued = await api.request("POST", f"{path}/test")
    assert queued.status_code == 202, queued.text
    event_id = queued.json()["event_id"]

    async def delivered() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = (await api.request("GET", f"{path}/deliveries")).json()["items"]
        assert [d["status"] for d in items] == ["delivered", "retrying", "retrying"], items
        return items

    log = await eventually(delivered, 15)
    assert {(d["event_id"], d["event_type"], d["run_id"]) for d in log} == {(event_id, "test", None)}
    headers, body = receiver.requests[-1]
    assert headers["x-aob-event"] == "test"
    assert hmac.compare_digest(headers["x-aob-signature"], sign(sub["secret"], headers["x-aob-timestamp"], body))
    assert orjson.loads(body) == {"text": f"Test notification for subscription {sub['id']} (sent from aob)"}
    # Delivered, it has left the outbox: another test may be sent.
    assert (await api.request("POST", f"{path}/test")).status_code == 202


async def test_tenants_created_after_the_notifier_started_are_notified(
    deployment: Deployment, redis: aioredis.Redis, pg_pool: asyncpg.Pool, keys: Keys
) -> None:
    # As in `aob up`: the coordinator's notifier starts before the API has created any tenant. Their events used to
    # wait for the consumer's stream refresh (every 30 s) before they were delivered.
    async with Receiver(failures=0).serving() as late_receiver:
        settings = deployment.replace(notify_allowlist=f"127.0.0.1:{late_receiver.port}", notify_poll_s=0.05)
        notifier = Notifier(settings.coordinator(), redis, pg_pool, keys, consumer="ntf-late")
        task = asyncio.create_task(notifier.run())
        try:
            async with running_api(settings, redis, pg_pool) as api:
                url = f"http://127.0.0.1:{late_receiver.port}/late"
                await _subscribe(api, channel="webhook", url=url, events=["run_succeeded"])
                await api.create_workflow("quick", {"nodes": [{"id": "n", "type": "noop"}], "edges": []})
                run = await api.start_run("quick")

                async def posted() -> bool:
                    assert [orjson.loads(body)["run_id"] for _, body in late_receiver.requests] == [run["id"]]
                    return True

                await eventually(posted, 10)
        finally:
            await notifier.shutdown()
            await task
