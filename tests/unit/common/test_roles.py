"""The role table: each key role holds its own permissions and those of the roles below it, nothing more."""

from __future__ import annotations

from common.roles import KEY_ROLES, Permission, role_allows, roles_with


def test_roles_are_ordered_by_what_they_hold() -> None:
    held = {role: {p for p in Permission if role_allows(role, p)} for role in KEY_ROLES}
    assert held["viewer"] == {Permission.READ}
    assert held["approver"] == {Permission.READ, Permission.DECIDE}
    assert held["editor"] == {Permission.READ, Permission.DECIDE, Permission.WRITE}
    assert held["admin"] == set(Permission)
    assert not role_allows("member", Permission.READ) and not role_allows("agent", Permission.DECIDE)
    assert roles_with(Permission.DECIDE) == ["approver", "editor", "admin"]
