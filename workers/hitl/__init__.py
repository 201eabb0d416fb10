"""The ``hitl`` node type: approvals opened by the worker and decided through the API (or by a timeout).

Deciding and storing approvals is shared with the API and lives in ``common.runs.approvals``.
"""

from workers.hitl._handler import HitlHandler, hitl_handler
from workers.hitl._sweeper import ApprovalSweeper

__all__ = ["ApprovalSweeper", "HitlHandler", "hitl_handler"]
