"""``WORKER_TYPES`` is exactly the task streams the known node types go to, so a worker (and a Kubernetes
Deployment with its autoscaler) exists for each."""

from __future__ import annotations

from common.workflow.ir import WORKER_TYPES, task_stream_type
from common.workflow.node_types import NODE_TYPES


def test_every_node_type_has_a_worker_type_and_every_worker_type_serves_one() -> None:
    assert {task_stream_type(node_type) for node_type in NODE_TYPES} == set(WORKER_TYPES)
    assert len(set(WORKER_TYPES)) == len(WORKER_TYPES)
