// What each key role may do, as common/roles.py grants it: the UI hides what the API would refuse.
import type { Role } from "../api/admin";

export type Permission = "read" | "decide" | "write" | "admin";

const GRANTS: Record<Role, Permission[]> = {
  viewer: ["read"],
  approver: ["read", "decide"],
  editor: ["read", "decide", "write"],
  admin: ["read", "decide", "write", "admin"],
};

/** Whether ``role`` (null while unknown) holds ``permission``. */
export function allows(role: Role | null | undefined, permission: Permission): boolean {
  return role ? (GRANTS[role] ?? []).includes(permission) : false;
}
