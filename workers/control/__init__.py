"""The ``control`` worker: ``workflow``, ``loop`` and ``map`` nodes, built on child runs."""

from workers.control._children import ChildrenConsumer
from workers.control._handler import ControlHandler, control_handler
from workers.control._settings import ControlWorkerSettings

__all__ = ["ChildrenConsumer", "ControlHandler", "ControlWorkerSettings", "control_handler"]
