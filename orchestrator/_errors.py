"""The API's one error shape, ``{"error": {"code", "message", "details"}}``, and the handlers that produce it."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import AobError, ValidationFailed

logger = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read by a middleware) once, then the real messages."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class ApiError(AobError):
    """An error a route answers with: HTTP status, machine code, message and details."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.headers = headers or {}


def not_found(kind: str, ref: str) -> ApiError:
    """404 for a resource the caller's tenant does not have (another tenant's looks the same)."""
    return ApiError(404, f"{kind} '{ref}' not found", details={"kind": kind, "id": ref})


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """``{path, message}`` per pydantic error, with paths like ``body.inputs.city``."""
    details = []
    for error in errors:
        path = ".".join(str(part) for part in error.get("loc", ()))
        message = "unknown field" if error.get("type") == "extra_forbidden" else str(error.get("msg", "invalid"))
        details.append({"path": path, "message": message})
    return details


async def _refused_by_deferred_count(request: Request) -> JSONResponse | None:
    """Count a request its route meant to count itself (``DeferredCount``) but ended before; the 429 when a
    request limit refuses it, which then answers instead of the error."""
    deferred = getattr(request.state, "deferred_count", None)
    if deferred is None:
        return None
    try:
        await deferred.alone()
    except ApiError as refused:
        return await _api_error(request, refused)
    if deferred.verdict is not None:
        request.state.rate_headers = deferred.verdict.headers()
    return None


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    if exc.status != 429 and (refused := await _refused_by_deferred_count(request)) is not None:
        return refused
    return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status, headers=exc.headers)


async def _validation_failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationFailed)
    if (refused := await _refused_by_deferred_count(request)) is not None:
        return refused
    return JSONResponse(error_body(exc.code, exc.message, exc.errors), 422)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    if (refused := await _refused_by_deferred_count(request)) is not None:
        return refused
    details = validation_details(exc.errors())
    message = "; ".join(f"{d['path']}: {d['message']}" for d in details) or "invalid request"
    return JSONResponse(error_body("validation_failed", message, details), 422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if (refused := await _refused_by_deferred_count(request)) is not None:
        return refused
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    return JSONResponse(error_body(_CODES.get(exc.status_code, "error"), message), exc.status_code, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error; see the server log"), 500)


def install_error_handlers(app: FastAPI) -> None:
    """Make every 4xx/5xx answer use the one error shape."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ValidationFailed, _validation_failed)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_bytes:
                await self._refuse(scope, receive, send, length.decode(errors="replace"))
                return
            await self.app(scope, receive, send)
            return
        # A streamed body has no length up front: read it (at most the limit) before the app sees it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await self._refuse(scope, receive, send, f"more than {self.max_bytes}")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)

    def _too_large(self, received: str) -> ApiError:
        return ApiError(
            413,
            f"request body: expected at most {self.max_bytes} bytes, got {received}",
            details={"max_bytes": self.max_bytes},
        )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, received: str) -> None:
        exc = self._too_large(received)
        response = JSONResponse(error_body(exc.code, exc.message, exc.details), 413)
        await response(scope, receive, send)
