"""API keys: hashing, the principal a key stands for, and looking a key up."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import asyncpg

DEFAULT_TENANT = "default"
BOOTSTRAP_KEY_ID = "bootstrap"
KEY_PREFIX = "aob_"
Role = Literal["admin", "member"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the key, its tenant and role."""

    key_id: str
    tenant_id: str
    role: Role
    name: str
    is_bootstrap: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def hash_api_key(raw: str) -> str:
    """The sha256 hex digest stored in place of a key."""
    return hashlib.sha256(raw.encode()).hexdigest()


def generate_api_key() -> str:
    """A new random key; shown to its creator once, stored only hashed."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


async def ensure_tenant(pool: asyncpg.Pool, tenant_id: str, name: str | None = None) -> None:
    """Create tenant ``tenant_id`` unless it exists."""
    await pool.execute(
        "INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING", tenant_id, name or tenant_id
    )


async def authenticate(pool: asyncpg.Pool, raw_key: str, admin_key: str | None) -> Principal | None:
    """The principal of ``raw_key``, or None when it is unknown or revoked.

    The bootstrap ``admin_key`` (from settings) is an admin of tenant ``default``.
    """
    if admin_key and hmac.compare_digest(raw_key.encode(), admin_key.encode()):
        return Principal(BOOTSTRAP_KEY_ID, DEFAULT_TENANT, "admin", "bootstrap admin", is_bootstrap=True)
    row = await pool.fetchrow(
        "SELECT id, tenant_id, role, name FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_api_key(raw_key),
    )
    if row is None:
        return None
    return Principal(row["id"], row["tenant_id"], row["role"], row["name"])
