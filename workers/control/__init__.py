"""The ``control`` worker: ``workflow``, ``loop`` and ``map`` nodes, built on child runs."""

from workers.control._children import ChildrenConsumer
from workers.control._handler import ControlHandler, control_handler

__all__ = ["ChildrenConsumer", "ControlHandler", "control_handler"]
