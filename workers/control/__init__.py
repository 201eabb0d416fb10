"""The ``control`` worker: ``workflow``, ``loop`` and ``map`` nodes, built on child runs."""

from workers.control._children import ChildrenConsumer
from workers.control._handler import ControlHandler, control_handler
from workers.control._listing import list_child_runs
from workers.control._references import check_workflow_references, workflow_references
from workers.control._settings import ControlWorkerSettings

__all__ = [
    "ChildrenConsumer",
    "ControlHandler",
    "ControlWorkerSettings",
    "check_workflow_references",
    "control_handler",
    "list_child_runs",
    "workflow_references",
]
