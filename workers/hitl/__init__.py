"""The ``hitl`` node type: approvals opened by the worker and decided through the API (or by a timeout)."""

from workers.hitl._decisions import (
    ApprovalConflict,
    ApprovalForbidden,
    ApprovalNotFound,
    Decision,
    apply_timeout,
    cancel_approvals,
    completion_for,
    decide_approval,
)
from workers.hitl._handler import HitlHandler, hitl_handler
from workers.hitl._settings import HitlWorkerSettings
from workers.hitl._store import Approval, ApprovalStatus, fetch_approval, list_approvals
from workers.hitl._sweeper import ApprovalSweeper

__all__ = [
    "Approval",
    "ApprovalConflict",
    "ApprovalForbidden",
    "ApprovalNotFound",
    "ApprovalStatus",
    "ApprovalSweeper",
    "Decision",
    "HitlHandler",
    "HitlWorkerSettings",
    "apply_timeout",
    "cancel_approvals",
    "completion_for",
    "decide_approval",
    "fetch_approval",
    "hitl_handler",
    "list_approvals",
]
