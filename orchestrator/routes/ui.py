"""The flow-builder UI: its built assets at ``/`` and ``GET /api/v1/config``, which tells it where the fanout is."""

from __future__ import annotations

import html
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from common.settings import UiFields
from orchestrator._errors import not_found
from orchestrator._schemas.service import UiConfigAnswer
from orchestrator._state import AppState, State

logger = logging.getLogger(__name__)

# Hosts a browser cannot connect to as written: it uses the page's own host name instead.
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def fanout_url(settings: UiFields) -> str | None:
    """The fanout's WebSocket base URL for browsers; None when the browser should use the page's host."""
    if settings.ui_fanout_url:
        return settings.ui_fanout_url.rstrip("/")
    if settings.fanout_host in _WILDCARD_HOSTS:
        return None
    host = f"[{settings.fanout_host}]" if ":" in settings.fanout_host else settings.fanout_host
    return f"ws://{host}:{settings.fanout_port}"


def fanout_origins(settings: UiFields, page_host: str) -> list[str]:
    """Where the page may open WebSockets to: the fanout's origin (on the page's host, as the page computes it,
    when ``fanout_url`` is null), under both schemes when the page decides (ws on http, wss on https)."""
    base = fanout_url(settings)
    if base is not None:
        parts = urlsplit(base)
        return [f"{parts.scheme}://{parts.netloc}"]
    host = f"[{page_host}]" if ":" in page_host else page_host
    return [f"{scheme}://{host}:{settings.fanout_port}" for scheme in ("ws", "wss")]


def content_security_policy(settings: UiFields, page_host: str) -> str:
    """The UI page's policy: its own scripts only, requests to the API and the fanout only, never framed."""
    directives = (
        "default-src 'self'",
        "script-src 'self'",
        # React sets styles through the CSSOM, which CSP does not restrict: no inline <style> or style="" needed.
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src " + " ".join(["'self'", *fanout_origins(settings, page_host)]),
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
    return "; ".join(directives)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    # FastAPI runs an included router's lifespan inside the app's own, so the app state is built by now.
    state: AppState = app.state.aob
    dist = state.settings.ui_dist_dir
    if not (dist / "index.html").is_file():
        logger.warning("UI assets missing under %s: `/` explains how to build them", dist)
    yield


router = APIRouter(lifespan=_lifespan)


@router.get("/api/v1/config", tags=["meta"])
async def ui_config(state: State) -> UiConfigAnswer:
    """What a browser client needs before logging in: the fanout's WebSocket URL (null: page host) and port."""
    return {"fanout_url": fanout_url(state.settings), "fanout_port": state.settings.fanout_port}


@router.get("/", include_in_schema=False, response_model=None)
async def index(request: Request, state: State) -> Response:
    """The UI's page, or a page saying how to build it when the assets are missing."""
    dist = state.settings.ui_dist_dir
    page = dist / "index.html"
    if not page.is_file():
        return HTMLResponse(_missing_page(dist), status_code=503, headers={"Content-Security-Policy": _MISSING_POLICY})
    policy = content_security_policy(state.settings, request.url.hostname or "localhost")
    return FileResponse(page, headers={"Cache-Control": "no-cache", "Content-Security-Policy": policy})


@router.get("/assets/{name:path}", include_in_schema=False)
async def asset(name: str, state: State) -> FileResponse:
    """One built asset; names are content-hashed by Vite, so they may be cached for good."""
    root = (state.settings.ui_dist_dir / "assets").resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise not_found("asset", name)
    return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})


_MISSING_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _missing_page(dist: Path) -> str:
    where = html.escape(str(dist))
    return (
        "<!doctype html><meta charset=utf-8><title>aob: UI not built</title>"
        "<body style='font:16px system-ui;max-width:44em;margin:3em auto'>"
        "<h1>The aob UI is not built</h1>"
        f"<p>No <code>index.html</code> under <code>{where}</code>.</p>"
        "<p>Build it with Node.js 20+ and npm: <code>make install</code> (runs <code>npm ci &amp;&amp; npm run build"
        "</code> in <code>frontend/flow-builder</code> when npm is present), or point <code>AOB_UI_DIST_DIR</code> at a"
        " build.</p><p>The API works without it: <a href='/docs'>/docs</a>.</p>"
    )
