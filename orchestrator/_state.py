"""What every request needs (settings, clients, scripts, metrics) and the dependencies that hand it out."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

import asyncpg
import redis.asyncio as aioredis
from fastapi import Depends, Request

from common.auth import KeyCache, Principal, authenticate
from common.key_watch import KeyWatch
from common.keys import Keys
from common.metrics import Metrics
from common.roles import Permission, roles_with
from common.runs.cas import Cas
from common.runs.scripts import Scripts
from common.runs.start_batch import StartBatcher
from common.secrets import Keyring
from common.settings import ApiSettings
from common.tracing import Tracing
from common.workflow.compiler import CompileResult
from orchestrator._errors import ApiError
from orchestrator._ratelimit import DeferredCount, RateLimiter
from orchestrator._workflow_cache import WorkflowCache

_COMPILED_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True)
class CompiledVersion:
    """A stored workflow version compiled, and its definition as the JSON text each of its runs' rows stores."""

    result: CompileResult
    definition_json: str


@dataclass
class AppState:
    """Shared by every request of one app; built by the lifespan."""

    settings: ApiSettings
    redis: aioredis.Redis
    pool: asyncpg.Pool
    keys: Keys
    scripts: Scripts
    # Submissions arriving together start their runs in one script call.
    starts: StartBatcher
    cas: Cas
    metrics: Metrics
    limiter: RateLimiter
    keyring: Keyring
    key_cache: KeyCache
    workflows: WorkflowCache
    # Ends SSE streams of revoked keys; its subscription also keeps ``key_cache`` and ``workflows`` coherent.
    key_watch: KeyWatch
    # Spans of requests and of the runs they start; None when tracing is off.
    tracing: Tracing | None = None
    # Compiled workflow versions by (workflow id, version): versions are immutable, so entries never go stale.
    compiled: OrderedDict[tuple[str, int], CompiledVersion] = field(default_factory=OrderedDict)

    def remember_compiled(self, key: tuple[str, int], result: CompiledVersion) -> None:
        """Keep ``result`` in the bounded compile cache."""
        self.compiled[key] = result
        self.compiled.move_to_end(key)
        while len(self.compiled) > _COMPILED_CACHE_SIZE:
            self.compiled.popitem(last=False)


async def get_state(request: Request) -> AppState:
    """The app's ``AppState`` (async: FastAPI runs a plain function dependency in a worker thread)."""
    state: AppState = request.app.state.aob
    return state


State = Annotated[AppState, Depends(get_state)]


async def require_principal(request: Request, state: State) -> Principal:
    """The caller from ``Authorization: Bearer <key>``; 401 without a valid key, 429 over the request limits."""
    principal = await _authenticated(request, state)
    verdict = await state.limiter.check_request(principal)
    request.state.rate_headers = verdict.headers()
    return principal


async def principal_counted_later(request: Request, state: AppState) -> tuple[Principal, DeferredCount]:
    """``require_principal`` for a route that counts its request itself, and what it counts it with; an error
    answer before the route counted it counts it then (``orchestrator._errors``)."""
    principal = await _authenticated(request, state)
    count = DeferredCount(state.limiter, principal)
    request.state.deferred_count = count
    return principal, count


async def _authenticated(request: Request, state: AppState) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, raw_key = header.partition(" ")
    if scheme.lower() != "bearer" or not raw_key.strip():
        raise ApiError(
            401,
            "authorization: expected 'Bearer <api key>'" + (", got no header" if not header else ""),
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await authenticate(
        state.pool,
        raw_key.strip(),
        state.settings.admin_key,
        redis=state.redis,
        keys=state.keys,
        cache=state.key_cache,
    )
    if principal is None:
        raise ApiError(401, "authorization: unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    if not principal.may_request(request.method, request.url.path):
        raise ApiError(403, f"{principal.name}: this token may only patch run {principal.run_id}")
    request.state.principal = principal
    return principal


Caller = Annotated[Principal, Depends(require_principal)]


def require(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the caller, who must hold ``permission`` (403 naming the roles that do otherwise)."""

    async def check(principal: Caller) -> Principal:
        return permitted(principal, permission)

    return check


def permitted(principal: Principal, permission: Permission) -> Principal:
    """``principal``, when its role holds ``permission``; 403 naming the roles that do otherwise."""
    if not principal.may(permission):
        raise ApiError(
            403,
            f"this needs permission '{permission}' (roles: {', '.join(roles_with(permission))});"
            f" key '{principal.name}' has role '{principal.role}'",
        )
    return principal


# One guard per permission; every route takes exactly one of these (or ``Caller`` for /me).
Reader = Annotated[Principal, Depends(require(Permission.READ))]
Decider = Annotated[Principal, Depends(require(Permission.DECIDE))]
Editor = Annotated[Principal, Depends(require(Permission.WRITE))]
Admin = Annotated[Principal, Depends(require(Permission.ADMIN))]
