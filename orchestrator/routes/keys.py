"""API keys (admin) and ``/me``: who the calling key is."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response

from common.auth import ensure_tenant, generate_api_key, hash_api_key
from common.key_watch import publish_revocation
from common.roles import ROLES
from orchestrator._errors import ApiError, not_found
from orchestrator._models import ApiKeyCreate
from orchestrator._schemas.keys import ApiKeyCreatedAnswer, ApiKeyPageAnswer, MeAnswer
from orchestrator._state import Admin, Caller, State

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/me")
async def me(caller: Caller) -> MeAnswer:
    """The calling key: its id, name, owner, tenant and role."""
    return {
        "key_id": caller.key_id,
        "name": caller.name,
        "owner": caller.person,
        "tenant_id": caller.tenant_id,
        "role": caller.role,
        "bootstrap": caller.is_bootstrap,
    }


@router.post("/api-keys", status_code=201)
async def create_key(body: ApiKeyCreate, state: State, caller: Admin) -> ApiKeyCreatedAnswer:
    """Create a key in the caller's tenant (or, for the bootstrap admin only, in ``tenant``, created if new).

    The key itself is in this answer only; it is stored hashed. ``owner`` (default: the name) is who approvals
    count: keys of one owner are one person.
    """
    owner = body.owner or body.name
    if owner in ROLES:
        # Approvers lists name roles and owners side by side; an owner spelled like a role would pass for it.
        field = "owner" if body.owner else "name"
        raise ApiError(422, f"{field}: '{owner}' is a role name and cannot be a key's owner; set 'owner'")
    tenant_id = caller.tenant_id
    if body.tenant is not None and body.tenant != caller.tenant_id:
        if not caller.is_bootstrap:
            raise ApiError(403, f"tenant: only the bootstrap admin may create keys in another tenant ('{body.tenant}')")
        tenant_id = body.tenant
        await ensure_tenant(state.pool, tenant_id)
    raw = generate_api_key()
    row = await state.pool.fetchrow(
        "INSERT INTO api_keys (tenant_id, name, owner, role, key_hash) VALUES ($1, $2, $3, $4, $5)"
        " RETURNING id, created_at",
        tenant_id,
        body.name,
        owner,
        body.role,
        hash_api_key(raw),
    )
    return {
        "id": row["id"],
        "name": body.name,
        "owner": owner,
        "role": body.role,
        "tenant_id": tenant_id,
        "key": raw,
        "created_at": row["created_at"].isoformat(),
    }


@router.get("/api-keys")
async def list_keys(state: State, caller: Admin) -> ApiKeyPageAnswer:
    """The caller's tenant's keys (never the keys themselves), newest first."""
    rows = await state.pool.fetch(
        "SELECT id, name, owner, role, tenant_id, created_at, revoked_at FROM api_keys WHERE tenant_id = $1"
        " ORDER BY created_at DESC, id DESC",
        caller.tenant_id,
    )
    items = [dict(r) | {"created_at": r["created_at"].isoformat(), "revoked_at": _iso(r["revoked_at"])} for r in rows]
    return {"items": items, "next_cursor": None}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@router.delete("/api-keys/{key_id}", status_code=204)
async def revoke_key(key_id: str, state: State, caller: Admin) -> Response:
    """Revoke a key of the caller's tenant (the bootstrap admin may revoke any); it stops working at once."""
    done = await state.pool.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL AND (tenant_id = $2 OR $3)",
        key_id,
        caller.tenant_id,
        caller.is_bootstrap,
    )
    if done == "UPDATE 0":
        raise not_found("api key", key_id)
    # This process at once; the others (and this one's open streams) through the published revocation.
    state.key_cache.forget_key(key_id)
    await publish_revocation(state.redis, state.keys, key_id)
    return Response(status_code=204)
