"""``aob notifications create|list|pause|deliveries|delete`` against a served API."""

from __future__ import annotations

import json

import pytest

from tests.support.cli import aob
from tests.support.deployment import Deployment


@pytest.fixture
def api_deployment(deployment: Deployment) -> Deployment:
    """Webhook subscriptions to a loopback port pass the address check."""
    return deployment.replace(notify_allowlist="127.0.0.1:9")


async def test_create_list_pause_deliveries_delete(api_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("notifications", "create", "--url", "http://127.0.0.1:9/hook", "--event", "run_failed")
    code, out, _ = await aob(capsys, *argv, "--event", "approval_requested", "--format", "slack")
    assert code == 0 and out.startswith("subscription nsub_"), out
    sub_id = out.split()[1]
    assert "signing secret (shown once): " in out

    code, out, _ = await aob(capsys, "notifications", "list", "-o", "json")
    [item] = json.loads(out)["items"]
    assert (item["id"], item["events"], item["format"]) == (sub_id, ["approval_requested", "run_failed"], "slack")
    code, out, _ = await aob(capsys, "notifications", "pause", sub_id, "-o", "json")
    assert code == 0 and json.loads(out)["paused"] is True
    code, out, _ = await aob(capsys, "notifications", "deliveries", sub_id)
    assert code == 0 and out.split() == [
        "CREATED_AT",
        "EVENT_TYPE",
        "RUN_ID",
        "ATTEMPT",
        "STATUS",
        "RESPONSE_CODE",
        "ERROR",
    ]
    code, out, _ = await aob(capsys, "notifications", "delete", sub_id)
    assert (code, out.strip()) == (0, f"deleted {sub_id}")
    code, _, err = await aob(capsys, "notifications", "delete", sub_id)
    assert code != 0 and "not found" in err

    code, _, err = await aob(capsys, "notifications", "create", "--url", "http://10.1.2.3/x", "--event", "run_failed")
    assert code != 0 and "not a public address" in err
