"""Serving the app with uvicorn until cancelled."""

from __future__ import annotations

import uvicorn

from common.serving import serve_until_cancelled
from common.settings import ApiSettings
from orchestrator._app import create_app


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
    await serve_until_cancelled(config, "orchestrator")
