"""API keys: hashing, the principal a key stands for, and looking a key up."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.roles import Permission, Role, role_allows
from common.ttl_cache import TtlCache
from common.workflow.node_configs import DEFAULT_PATCH_TYPES

DEFAULT_TENANT = "default"
BOOTSTRAP_KEY_ID = "bootstrap"
KEY_PREFIX = "aob_"
AGENT_TOKEN_PREFIX = "aob_agent_"
# What a run-scoped agent token may call, ``{run}`` standing for its own run id.
_AGENT_ROUTES = (("GET", "/api/v1/runs/{run}"), ("POST", "/api/v1/runs/{run}/patch"))


@dataclass(frozen=True, slots=True)
class AgentGrant:
    """What a run-scoped agent token was minted for: its run, its agent node, and the node types it may add."""

    run_id: str
    node_id: str
    patch_types: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: the key, its tenant and role, and the person or service (``owner``) behind it."""

    key_id: str
    tenant_id: str
    role: Role
    name: str
    is_bootstrap: bool = False
    # Set for agent tokens: the one run this principal acts on.
    run_id: str | None = None
    # Who holds the key; several keys may share one. Unset, the key stands for itself.
    owner: str | None = None
    grant: AgentGrant | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def person(self) -> str:
        """The identity approvals count and compare: the key's owner, else the key itself."""
        return self.owner or self.key_id

    def may(self, permission: Permission) -> bool:
        """Whether this principal's role holds ``permission``."""
        return role_allows(self.role, permission)

    def may_request(self, method: str, path: str) -> bool:
        """Whether this principal may call ``method path``: API keys anything, agent tokens only their own run."""
        if self.run_id is None:
            return True
        return any(
            method.upper() == allowed and path.rstrip("/") == template.format(run=self.run_id)
            for allowed, template in _AGENT_ROUTES
        )


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


class KeyCache(TtlCache[str, Principal]):
    """API keys found in Postgres by hash, trusted for ``ttl_s`` after the lookup; ``forget_key`` drops a revoked
    key at once.

    Only keys that were found are kept: an unknown key asks Postgres every time, so a key works as soon as it is
    created. ``ttl_s`` bounds how long a revocation that reaches no ``forget_key`` (made in Postgres directly, or
    published while the subscription was down) goes unseen.
    """

    def forget_key(self, key_id: str) -> None:
        """Drop every cached entry of key ``key_id`` (it was revoked)."""
        self.forget(lambda _, principal: principal is not None and principal.key_id == key_id)


async def authenticate(
    pool: asyncpg.Pool,
    raw_key: str,
    admin_key: str | None,
    *,
    redis: aioredis.Redis | None = None,
    keys: Keys | None = None,
    cache: KeyCache | None = None,
) -> Principal | None:
    """The principal of ``raw_key``, or None when it is unknown or revoked.

    The bootstrap ``admin_key`` (from settings) is an admin of tenant ``default``. With ``redis``, run-scoped agent
    tokens (``aob_agent_...``, minted by the agent worker) are recognised too. With ``cache``, an API key looked up
    recently is not looked up again.
    """
    if admin_key and hmac.compare_digest(raw_key.encode(), admin_key.encode()):
        return Principal(
            BOOTSTRAP_KEY_ID, DEFAULT_TENANT, "admin", "bootstrap admin", is_bootstrap=True, owner=BOOTSTRAP_KEY_ID
        )
    if raw_key.startswith(AGENT_TOKEN_PREFIX):
        return await authenticate_agent_token(redis, keys or Keys(), raw_key) if redis is not None else None
    key_hash = hash_api_key(raw_key)

    async def lookup() -> Principal | None:
        row = await pool.fetchrow(
            "SELECT id, tenant_id, role, name, owner FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
            key_hash,
        )
        return (
            None
            if row is None
            else Principal(row["id"], row["tenant_id"], row["role"], row["name"], owner=row["owner"])
        )

    return await (cache.load(key_hash, lookup) if cache is not None else lookup())


async def owner_of_key(db: asyncpg.Pool | asyncpg.Connection, key_id: str) -> str:
    """The owner of key ``key_id`` (revoked or not); the id itself for keys without a row (the bootstrap admin)."""
    owner: str | None = await db.fetchval("SELECT owner FROM api_keys WHERE id = $1", key_id)
    return owner or key_id


def generate_agent_token() -> str:
    """A new run-scoped agent token; only its hash is stored."""
    return AGENT_TOKEN_PREFIX + secrets.token_urlsafe(32)


async def authenticate_agent_token(redis: aioredis.Redis, keys: Keys, raw_token: str) -> Principal | None:
    """The agent principal of ``raw_token`` (role ``agent``, scoped to one run), or None when unknown or expired."""
    raw = await redis.get(keys.agent_token(hash_api_key(raw_token)))
    if raw is None:
        return None
    grant = json.loads(raw)
    if grant["expires"] < time.time():
        return None
    return Principal(
        key_id=f"agent:{grant['run_id']}:{grant['node_id']}",
        tenant_id=grant["tenant_id"],
        role="agent",
        name=f"agent {grant['node_id']}",
        run_id=grant["run_id"],
        grant=AgentGrant(grant["run_id"], grant["node_id"], tuple(grant.get("patch_types", DEFAULT_PATCH_TYPES))),
    )
