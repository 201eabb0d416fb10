"""The FastAPI app factory: one lifespan that owns the clients, the routers, the error shape."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI

from common.auth import DEFAULT_TENANT, KeyCache, ensure_tenant
from common.clients import open_clients
from common.db import create_pool
from common.key_watch import KeyWatch
from common.keys import Keys
from common.metrics import Metrics
from common.runs.cas import Cas
from common.runs.scripts import Scripts
from common.runs.start_batch import StartBatcher
from common.secrets import Keyring
from common.settings import ApiSettings
from common.tracing import start_tracing
from orchestrator._errors import BodyLimitMiddleware, install_error_handlers
from orchestrator._headers import SecurityHeadersMiddleware
from orchestrator._input_guard import InputGuardMiddleware
from orchestrator._json import OrjsonResponse
from orchestrator._middleware import RequestMetricsMiddleware
from orchestrator._models import RunCreate
from orchestrator._ratelimit import RateLimiter
from orchestrator._schemas.document import install_openapi
from orchestrator._schemas.errors import ERROR_RESPONSES
from orchestrator._state import AppState
from orchestrator._workflow_cache import WorkflowCache

logger = logging.getLogger(__name__)

# Each module exposes ``router: APIRouter``; its paths are absolute (``/api/v1/...``, ``/healthz``).
ROUTERS = (
    "orchestrator.routes.ops",
    "orchestrator.routes.workflows",
    "orchestrator.routes.runs",
    "orchestrator.routes.patches",
    "orchestrator.routes.keys",
    "orchestrator.routes.meta",
    "orchestrator.routes.approvals",
    "orchestrator.routes.events",
    "orchestrator.routes.logs",
    "orchestrator.routes.dead_letters",
    "orchestrator.routes.audit",
    "orchestrator.routes.prune",
    "orchestrator.routes.secrets",
    "orchestrator.routes.triggers",
    "orchestrator.routes.hooks",
    "orchestrator.routes.schedules",
    "orchestrator.routes.notifications",
    "orchestrator.routes.ui",
)


def create_app(
    settings: ApiSettings, *, redis: aioredis.Redis | None = None, pool: asyncpg.Pool | None = None
) -> FastAPI:
    """The orchestrator app; clients not given are created by its lifespan from ``settings`` and closed after."""
    metrics = Metrics()
    # A malformed AOB_SECRETS_KEYS stops the start, rather than failing requests later.
    keyring = Keyring.from_settings(settings)
    # Made per app, so in each forked API process (the batch span processor restarts its thread after a fork).
    tracing = start_tracing("aob-orchestrator", settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if tracing is not None:
                stack.callback(tracing.shutdown)
            if pool is None and settings.database_url:
                # Nothing the API runs keeps session state past its connection's release (the patch lock's holder
                # drops a connection it may not have unlocked: orchestrator.routes.patches): skip asyncpg's reset
                # query, a second round trip for every query.
                own_pool = await create_pool(settings.database_url, settings.db_schema, reset_session=False)
                stack.push_async_callback(own_pool.close)
            else:
                own_pool = pool
            redis_client, db = await open_clients(stack, settings, "orchestrator", redis=redis, pool=own_pool)
            await ensure_tenant(db, DEFAULT_TENANT)
            keys = Keys(settings.key_prefix, settings.shards)
            key_cache = KeyCache(settings.api_cache_s)
            workflows = WorkflowCache(settings.api_cache_s)
            key_watch = KeyWatch(redis_client, db, keys, settings.key_recheck_s, metrics=metrics, cache=key_cache)
            key_watch.on_message(keys.workflow_changes(), workflows.forget_tenant)
            await stack.enter_async_context(key_watch)
            scripts = Scripts(redis_client, keys)
            app.state.aob = AppState(
                settings=settings,
                redis=redis_client,
                pool=db,
                keys=keys,
                scripts=scripts,
                starts=StartBatcher(scripts, max_agents=settings.max_agents),
                cas=Cas(redis_client, keys, db),
                metrics=metrics,
                limiter=RateLimiter(redis_client, keys, settings),
                keyring=keyring,
                key_cache=key_cache,
                workflows=workflows,
                key_watch=key_watch,
                tracing=tracing,
            )
            yield

    app = FastAPI(
        title="aob",
        version="1",
        lifespan=lifespan,
        default_response_class=OrjsonResponse,
        responses=ERROR_RESPONSES,
    )
    install_error_handlers(app)
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    app.add_middleware(InputGuardMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Outermost, so that every answer carries the headers, refusals of the middlewares inside included.
    docs = (app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url)
    app.add_middleware(SecurityHeadersMiddleware, docs_paths=[path for path in docs if path])
    for module in ROUTERS:
        app.include_router(importlib.import_module(module).router)
    if tracing is not None:
        tracing.instrument_app(app)
    install_openapi(app, bodies=[RunCreate])
    return app
