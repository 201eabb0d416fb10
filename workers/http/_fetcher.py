"""Guarded HTTP requests: every hop checked by the SSRF guard, redirects followed by hand, size and time capped."""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from common.errors import NodeFailed
from common.pinned_http import pinned_addresses
from common.redaction import safe_url
from workers.http._ssrf import CheckedTarget, SsrfGuard

log = logging.getLogger(__name__)

QueryValue = str | int | float | bool | None
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_BODY_HEADERS = ("content-type", "content-length", "transfer-encoding")
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")
_NO_JSON: Any = object()


@dataclass(frozen=True)
class FetchedResponse:
    """The final response of a guarded request: status, lower-case headers, the whole (capped) body."""

    status: int
    headers: dict[str, str]
    content: bytes
    encoding: str
    url: httpx.URL

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def body(self) -> Any:
        """The body parsed as JSON when the response says it is JSON (and is), else as text."""
        mime = self.headers.get("content-type", "").partition(";")[0].strip().lower()
        if mime == "application/json" or mime.endswith("+json"):
            try:
                return jsonlib.loads(self.content)
            except ValueError:
                return self.text
        return self.text


class HttpFetcher:
    """Sends requests through one shared client, checking the first URL and every redirect with the guard."""

    def __init__(self, client: httpx.AsyncClient, guard: SsrfGuard) -> None:
        self._client = client
        self._guard = guard

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, QueryValue] | None = None,
        json: Any = _NO_JSON,
        content: str | bytes | None = None,
        timeout_s: float = 30.0,
        max_response_bytes: int | None = None,
        follow_redirects: bool = True,
    ) -> FetchedResponse:
        """Fetch ``url``; the time cap covers DNS, every hop and the body; the size cap never exceeds the guard's.

        Raises ``SsrfBlocked`` for a refused hop and ``NodeFailed`` for timeouts (retryable), connection errors
        (retryable), oversized bodies and too many redirects.
        """
        request_headers = httpx.Headers(headers or {})
        body = content.encode() if isinstance(content, str) else content
        if json is not _NO_JSON:
            body = jsonlib.dumps(json).encode()
            request_headers.setdefault("content-type", "application/json")
        limit = self._guard.max_response_bytes
        if max_response_bytes is not None:
            limit = min(limit, max_response_bytes)
        hops = _Hops(method.upper(), url, request_headers, body)
        try:
            async with asyncio.timeout(timeout_s):
                return await self._follow(hops, params, timeout_s, limit, follow_redirects)
        except (TimeoutError, httpx.TimeoutException):
            raise NodeFailed(
                f"timeout after {timeout_s:g}s ({hops.method} {hops.shown})", retryable=True, error_type="timeout"
            ) from None

    async def _follow(
        self,
        hops: _Hops,
        params: Mapping[str, QueryValue] | None,
        timeout_s: float,
        limit: int,
        follow_redirects: bool,
    ) -> FetchedResponse:
        previous_origin: tuple[str, str, int] | None = None
        while True:
            target = await self._guard.check(hops.url)
            if previous_origin is not None and target.origin != previous_origin:
                # Credentials were meant for the first origin, not for wherever it redirects.
                for name in _CREDENTIAL_HEADERS:
                    hops.headers.pop(name, None)
            url = target.url.copy_merge_params(dict(params)) if params and previous_origin is None else target.url
            hops.shown = safe_url(url)
            response = await self._send(hops, target, url, timeout_s)
            try:
                location = response.headers.get("location")
                if not (follow_redirects and location and response.status_code in _REDIRECT_STATUSES):
                    content = await _read_capped(response, limit, hops)
                    return FetchedResponse(
                        status=response.status_code,
                        headers=dict(response.headers.items()),
                        content=content,
                        encoding=response.charset_encoding or "utf-8",
                        url=url,
                    )
            finally:
                await response.aclose()
            hops.redirect(response.status_code, urljoin(str(url), location), self._guard.max_redirects)
            previous_origin = target.origin

    async def _send(self, hops: _Hops, target: CheckedTarget, url: httpx.URL, timeout_s: float) -> httpx.Response:
        request = self._client.build_request(
            hops.method, url, headers=hops.headers, content=hops.body, timeout=httpx.Timeout(timeout_s)
        )
        log.debug("http %s %s via %s", hops.method, hops.shown, ",".join(target.addresses))
        try:
            with pinned_addresses(target.host, target.port, target.addresses):
                return await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise
        except httpx.LocalProtocolError as exc:
            raise NodeFailed(
                f"invalid request: {exc} ({hops.method} {hops.shown})", retryable=False, error_type="invalid_request"
            ) from None
        except httpx.TransportError as exc:
            raise NodeFailed(
                f"connection failed: {exc or type(exc).__name__} ({hops.method} {hops.shown})",
                retryable=True,
                error_type="connection_error",
            ) from None


class _Hops:
    """The request as it changes along a redirect chain: method, URL, headers, body and hop count."""

    def __init__(self, method: str, url: str, headers: httpx.Headers, body: bytes | None) -> None:
        self.method = method
        self.url = url
        self.shown = safe_url(url)
        self.headers = headers
        self.body = body
        self.count = 0

    def redirect(self, status: int, location: str, max_redirects: int) -> None:
        self.count += 1
        if self.count > max_redirects:
            raise NodeFailed(
                f"too many redirects: more than {max_redirects} (last from {self.shown})",
                retryable=False,
                error_type="too_many_redirects",
            )
        # Browsers' rules: 303 always becomes GET, 301/302 turn POST into GET, 307/308 keep method and body.
        if (status == 303 and self.method != "HEAD") or (status in (301, 302) and self.method == "POST"):
            self.method = "GET"
            self.body = None
            for name in _BODY_HEADERS:
                self.headers.pop(name, None)
        self.url = location


async def _read_capped(response: httpx.Response, limit: int, hops: _Hops) -> bytes:
    declared = response.headers.get("content-length", "")
    too_large = NodeFailed(
        f"response body exceeds {limit} bytes ({hops.method} {hops.shown})",
        retryable=False,
        error_type="response_too_large",
    )
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    try:
        # Decoded bytes are counted, so a small compressed body cannot expand past the cap.
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
    except httpx.TimeoutException:
        raise
    except httpx.DecodingError as exc:
        raise NodeFailed(
            f"invalid response body: {exc} ({hops.method} {hops.shown})", retryable=False, error_type="bad_response"
        ) from None
    except httpx.TransportError as exc:
        raise NodeFailed(
            f"connection failed while reading the body: {exc or type(exc).__name__} ({hops.method} {hops.shown})",
            retryable=True,
            error_type="connection_error",
        ) from None
    return b"".join(chunks)
