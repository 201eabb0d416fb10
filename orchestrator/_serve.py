"""Serving the app with uvicorn until cancelled."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from common.settings import ApiSettings
from orchestrator._app import create_app

logger = logging.getLogger(__name__)


async def run_api(settings: ApiSettings) -> None:
    """Serve the API on ``settings.api_host:api_port`` until cancelled; shuts down gracefully."""
    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    # uvicorn captures SIGINT/SIGTERM itself while serving and shuts down gracefully; cancellation does the same.
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        logger.info("orchestrator stopping")
        server.should_exit = True
        await serving
        raise
