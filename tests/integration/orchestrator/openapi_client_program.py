"""A program written against the client that ``openapi-python-client`` generates from aob's OpenAPI document
(package ``aob_client``): it creates a workflow, starts a run, waits for it and reads its nodes through the
generated typed models only.

``test_openapi_client.py`` generates the client from a live API, type-checks this file with ``mypy --strict`` and
runs it against that API and an engine. Usage: ``python openapi_client_program.py BASE_URL API_KEY WORKFLOW``;
prints one JSON line and exits 0 when the run and each of its nodes succeeded.
"""

from __future__ import annotations

import json
import sys
import time

from aob_client import AuthenticatedClient
from aob_client.api.runs import create_run_api_v1_runs_post, get_run_api_v1_runs_run_id_get
from aob_client.api.workflows import create_workflow_api_v1_workflows_post
from aob_client.models import (
    EdgeSpec,
    NodeSpec,
    NodeSpecConfig,
    NodeStateStatus,
    Run,
    RunCreate,
    RunCreateInputs,
    RunDetail,
    RunDetailStatus,
    WorkflowCreate,
    WorkflowCreated,
    WorkflowDefinition,
)

TIMEOUT_S = 30.0
POLL_S = 0.1
ENDED = {RunDetailStatus.SUCCEEDED, RunDetailStatus.FAILED, RunDetailStatus.CANCELLED, RunDetailStatus.TIMED_OUT}


def greeting_workflow(name: str) -> WorkflowCreate:
    """``start`` (noop) -> ``greet`` (transform: a greeting made from the run's input ``who``)."""
    greet = NodeSpec(
        id="greet",
        type_="transform",
        config=NodeSpecConfig.from_dict({"output": {"greeting": "hello {{ inputs.who }}"}}),
    )
    definition = WorkflowDefinition(
        nodes=[NodeSpec(id="start", type_="noop"), greet], edges=[EdgeSpec(from_="start", to="greet")]
    )
    return WorkflowCreate(name=name, definition=definition)


def wait_for_end(client: AuthenticatedClient, run_id: str) -> RunDetail:
    """The run once it has ended."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        run = get_run_api_v1_runs_run_id_get.sync(run_id, client=client)
        if not isinstance(run, RunDetail):
            raise SystemExit(f"GET /runs/{run_id}: {run}")
        if run.status in ENDED:
            return run
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} still {run.status.value} after {TIMEOUT_S} s")
        time.sleep(POLL_S)


def main(base_url: str, api_key: str, workflow: str) -> int:
    with AuthenticatedClient(base_url=base_url, token=api_key, raise_on_unexpected_status=True) as client:
        created = create_workflow_api_v1_workflows_post.sync(client=client, body=greeting_workflow(workflow))
        if not isinstance(created, WorkflowCreated):
            raise SystemExit(f"POST /workflows: {created}")
        inputs = RunCreateInputs.from_dict({"who": "typed world"})
        started = create_run_api_v1_runs_post.sync(client=client, body=RunCreate(workflow_id=created.id, inputs=inputs))
        if not isinstance(started, Run):
            raise SystemExit(f"POST /runs: {started}")
        run = wait_for_end(client, started.id)
    nodes = run.nodes.additional_properties
    greeting = nodes["greet"].output if "greet" in nodes else None
    print(
        json.dumps(
            {
                "workflow_id": created.id,
                "version": created.version,
                "run_id": run.id,
                "status": run.status.value,
                "nodes": {node_id: node.status.value for node_id, node in sorted(nodes.items())},
                "attempts": {node_id: node.attempt for node_id, node in sorted(nodes.items())},
                "greeting": greeting,
            }
        )
    )
    succeeded = run.status is RunDetailStatus.SUCCEEDED
    return 0 if succeeded and all(node.status is NodeStateStatus.SUCCEEDED for node in nodes.values()) else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
