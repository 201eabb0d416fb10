"""``aob schedules create|list|get|pause|resume|delete`` against a served API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.api import chain_definition
from tests.support.cli import aob


async def test_create_list_get_pause_resume_delete(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    definition = tmp_path / "w.json"
    definition.write_text(json.dumps({"name": "nightly", **chain_definition(1)}))
    code, _, err = await aob(capsys, "workflows", "create", "-f", str(definition))
    assert code == 0, err

    code, out, err = await aob(
        capsys, "schedules", "create", "nightly", "--cron", "0 6 * * 1-5", "--timezone", "Europe/Paris",
        "--inputs", '{"a": 1}', "-o", "json",
    )  # fmt: skip
    assert code == 0, err
    schedule = json.loads(out)
    assert (
        schedule["cron"] == "0 6 * * 1-5" and schedule["inputs"] == {"a": 1} and len(schedule["next_fire_times"]) == 5
    )

    code, out, _ = await aob(capsys, "schedules", "list")
    assert code == 0 and out.splitlines()[1].split()[0] == schedule["id"]
    code, out, _ = await aob(capsys, "schedules", "get", schedule["id"])
    assert code == 0 and "next fire times: " + schedule["next_fire_times"][0] in out

    code, out, _ = await aob(capsys, "schedules", "pause", schedule["id"], "-o", "json")
    assert code == 0 and json.loads(out)["paused"] is True
    code, out, _ = await aob(capsys, "schedules", "resume", schedule["id"], "-o", "json")
    assert code == 0 and json.loads(out)["paused"] is False

    code, _, err = await aob(capsys, "schedules", "create", "nightly", "--every", "60", "--timezone", "Nowhere/X")
    assert code != 0 and "body.timezone" in err
    code, _, err = await aob(capsys, "schedules", "create", "nightly", "--every", "60", "--inputs", "[1]")
    assert code != 0 and "--inputs: expected a JSON object" in err

    code, out, _ = await aob(capsys, "schedules", "delete", schedule["id"])
    assert code == 0 and out.strip() == f"schedule {schedule['id']} deleted"
    code, _, err = await aob(capsys, "schedules", "get", schedule["id"])
    assert code != 0 and "not found" in err
