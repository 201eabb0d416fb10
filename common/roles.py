"""Roles and what each may do: the one table every route guard and every shared operation checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

# Roles an API key can hold; ``agent`` is only ever a run-scoped agent token's.
KeyRole = Literal["admin", "editor", "approver", "viewer"]
Role = Literal["admin", "editor", "approver", "viewer", "agent"]
KEY_ROLES: tuple[str, ...] = get_args(KeyRole)
ROLES: tuple[str, ...] = get_args(Role)


class Permission(StrEnum):
    """What a request may do; each route needs exactly one."""

    READ = "read"  # see workflows, runs, events, logs, approvals, blobs
    DECIDE = "decide"  # approve or reject approvals
    WRITE = "write"  # create and change workflows; start, cancel, resume and patch runs
    ADMIN = "admin"  # keys, audit log, dead letters, pruning; weakening a running run's approval gate


_GRANTS: dict[str, frozenset[Permission]] = {
    "viewer": frozenset({Permission.READ}),
    "approver": frozenset({Permission.READ, Permission.DECIDE}),
    "editor": frozenset({Permission.READ, Permission.DECIDE, Permission.WRITE}),
    "admin": frozenset(Permission),
    # Agent tokens are further cut to reading and patching their own run (``Principal.may_request``).
    "agent": frozenset({Permission.READ, Permission.WRITE}),
}


def role_allows(role: str, permission: Permission) -> bool:
    """Whether ``role`` holds ``permission``; unknown roles hold nothing."""
    return permission in _GRANTS.get(role, frozenset())


def roles_with(permission: Permission) -> list[str]:
    """The key roles that hold ``permission``, most privileged last (for error messages)."""
    return [role for role in reversed(KEY_ROLES) if role_allows(role, permission)]
