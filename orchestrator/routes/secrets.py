"""Secrets: set (admin), list names, delete (admin), rotate (admin). Values go in and never come back out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from common.auth import Principal
from common.secrets import MAX_VALUE_CHARS, MIN_VALUE_CHARS, SECRET_NAME, SecretInfo, SecretStore, SecretsUnavailable
from orchestrator._audit import audited
from orchestrator._errors import ApiError, not_found
from orchestrator._schemas.secrets import SecretAnswer, SecretPageAnswer, SecretsRotatedAnswer
from orchestrator._state import Admin, AppState, Reader, State

router = APIRouter(prefix="/api/v1", tags=["secrets"])

SecretName = Annotated[
    str, Path(pattern=f"^{SECRET_NAME.pattern}$", description="letters, digits and '_'; not starting with a digit")
]


class SecretValue(BaseModel):
    """The body of ``PUT /secrets/{name}``."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=MIN_VALUE_CHARS, max_length=MAX_VALUE_CHARS, description="write-only")


class SecretCreate(SecretValue):
    """The body of ``POST /secrets``."""

    name: str = Field(pattern=f"^{SECRET_NAME.pattern}$")


class RotateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    all_tenants: bool = Field(default=False, description="every tenant's secrets (bootstrap admin only)")


@router.put("/secrets/{name}", responses={201: {"model": SecretAnswer, "description": "a new secret"}})
async def put_secret(
    name: SecretName, body: SecretValue, state: State, caller: Admin, response: Response
) -> SecretAnswer:
    """Create (201) or replace (200) a secret of the caller's tenant; the answer never holds the value."""
    info, created = await _put(state, caller, name, body.value)
    response.status_code = 201 if created else 200
    return _shown(info)


@router.post("/secrets", status_code=201, responses={200: {"model": SecretAnswer, "description": "replaced"}})
async def create_secret(body: SecretCreate, state: State, caller: Admin, response: Response) -> SecretAnswer:
    """Like ``PUT /secrets/{name}`` with the name in the body (201 new, 200 replaced)."""
    info, created = await _put(state, caller, body.name, body.value)
    response.status_code = 201 if created else 200
    return _shown(info)


@router.get("/secrets")
async def list_secrets(state: State, caller: Reader) -> SecretPageAnswer:
    """The tenant's secrets by name, with when and by which key each was last set; never the values."""
    infos = await SecretStore(state.pool, state.keyring).list(caller.tenant_id)
    return {"items": [_shown(info) for info in infos], "next_cursor": None}


@router.get("/secrets/{name}")
async def get_secret(name: SecretName, state: State, caller: Reader) -> SecretAnswer:
    """One secret's name and times; never its value."""
    for info in await SecretStore(state.pool, state.keyring).list(caller.tenant_id):
        if info.name == name:
            return _shown(info)
    raise not_found("secret", name)


@router.delete("/secrets/{name}", status_code=204)
async def delete_secret(name: SecretName, state: State, caller: Admin) -> Response:
    """Delete a secret; nodes that refer to it fail from then on, naming it."""
    async with audited(state, caller, "secret.delete", name, tenant_id=caller.tenant_id, detail={}):
        if not await SecretStore(state.pool, state.keyring).delete(caller.tenant_id, name):
            raise not_found("secret", name)
    return Response(status_code=204)


@router.post("/secrets/rotate")
async def rotate_secrets(state: State, caller: Admin, body: RotateRequest | None = None) -> SecretsRotatedAnswer:
    """Re-encrypt the tenant's secrets under the first key of ``AOB_SECRETS_KEYS``; returns how many."""
    every = body is not None and body.all_tenants
    if every and not caller.is_bootstrap:
        raise ApiError(403, "all_tenants: only the bootstrap admin may rotate every tenant's secrets")
    tenant_id = None if every else caller.tenant_id
    detail = {"all_tenants": every}
    async with audited(state, caller, "secret.rotate", "*", tenant_id=caller.tenant_id, detail=detail) as outcome:
        try:
            count = await SecretStore(state.pool, state.keyring).rotate(tenant_id)
        except SecretsUnavailable as exc:
            raise _unconfigured(exc) from None
        outcome["rotated"] = count
    return {"rotated": count, "all_tenants": every}


async def _put(state: AppState, caller: Principal, name: str, value: str) -> tuple[SecretInfo, bool]:
    async with audited(state, caller, "secret.set", name, tenant_id=caller.tenant_id, detail={}) as outcome:
        try:
            info, created = await SecretStore(state.pool, state.keyring).put(
                caller.tenant_id, name, value, by=caller.key_id
            )
        except SecretsUnavailable as exc:
            raise _unconfigured(exc) from None
        outcome["created"] = created
    return info, created


def _unconfigured(exc: SecretsUnavailable) -> ApiError:
    # A 409, not a 503: the deployment will not store secrets until it has a key, however often the call is retried.
    return ApiError(409, exc.message, code="secrets_unavailable")


def _shown(info: SecretInfo) -> dict[str, Any]:
    return info.model_dump(mode="json")
