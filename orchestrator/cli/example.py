"""``aob up --example FILE``: once the stack is up, save an example workflow, run it and print its events."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from common.errors import AobError
from orchestrator.cli.client import ApiClient, ClientConfig
from orchestrator.cli.follow import follow_run

READY_TIMEOUT_S = 90.0


def wait_until_ready(url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll ``/readyz`` until the API answers 200; raise ``AobError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AobError(f"example: the API at {url} was not ready within {timeout_s:g}s")
        time.sleep(0.25)


def run_example(config: ClientConfig, path: Path, inputs: dict[str, Any]) -> int:
    """Create (or update) the workflow in ``path``, start a run and follow it; returns 0 if it succeeded."""
    wait_until_ready(config.url)
    try:
        definition = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise AobError(f"example {path}: not a readable JSON definition: {exc}") from exc
    name = definition.get("name") or path.stem
    with ApiClient(config) as api:
        try:
            workflow = api.request("POST", "/api/v1/workflows", json={"name": name, "definition": definition})
        except AobError as exc:
            if not exc.message.startswith("409"):
                raise
            workflow = api.request("PUT", f"/api/v1/workflows/{quote(name, safe='')}", json={"definition": definition})
        run = api.request("POST", "/api/v1/runs", json={"workflow_id": workflow["id"], "inputs": inputs})
    print(f"example: workflow {name!r} version {workflow['version']}, run {run['id']}", flush=True)
    status = follow_run(config, run["id"])
    with ApiClient(config) as api:
        final = api.request("GET", f"/api/v1/runs/{run['id']}")
    print(f"example: run {run['id']} {final['status']}; outputs: {json.dumps(final.get('outputs'))}", flush=True)
    sys.stdout.flush()
    return status
