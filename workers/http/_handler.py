"""The ``http`` node: one guarded request, its status checked, its response as the node's output."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import httpcore

from common.errors import NodeFailed
from common.logging import redacting
from common.pinned_http import create_http_client
from common.redaction import Redactor, safe_url
from common.secrets import SecretStore
from common.settings import HttpNodeFields
from common.workflow.node_configs import HttpConfig
from workers._handler import NodeContext, NodeResult, validated_config
from workers._secret_values import secret_values
from workers.http._fetcher import FetchedResponse, HttpFetcher
from workers.http._ssrf import Resolver, SsrfGuard

log = logging.getLogger(__name__)


class HttpHandler:
    """Runs ``http`` nodes; output ``{"status", "headers", "body"}`` (body parsed when the response is JSON)."""

    node_type: ClassVar[str] = "http"
    reports_start: ClassVar[bool] = True

    def __init__(self, fetcher: HttpFetcher, secrets: SecretStore | None = None) -> None:
        self._fetcher = fetcher
        self._secrets = secrets

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        config = validated_config(HttpConfig, ctx.config)
        values = await secret_values(self._secrets, ctx, ctx.config)
        # Whatever this node produces (output, error, log lines) is scrubbed of the secrets it used.
        redactor = Redactor(values.values())
        with redacting(redactor):
            try:
                output = await self._fetch(ctx, _with_secrets(config, ctx, values))
            except NodeFailed as exc:
                raise NodeFailed(
                    redactor.redact(exc.message), retryable=exc.retryable, error_type=exc.error_type
                ) from None
            except Exception as exc:
                # Logged here, where the redactor applies, and reported as the runtime reports a crash.
                log.exception("http node run=%s node=%s crashed", ctx.run_id, ctx.node_id)
                raise NodeFailed(redactor.redact(f"{type(exc).__name__}: {exc}"), error_type="crash") from None
        return NodeResult(output=redactor.redact_data(output))

    async def _fetch(self, ctx: NodeContext, config: HttpConfig) -> dict[str, Any]:
        started = time.monotonic()
        extra: dict[str, Any] = {"json": config.json_body} if "json_body" in config.model_fields_set else {}
        response = await self._fetcher.request(
            config.method,
            config.url,
            headers=_traced(config.headers, ctx.traceparent),
            params=config.query,
            content=config.body,
            timeout_s=config.timeout_s,
            max_response_bytes=config.max_response_bytes,
            follow_redirects=config.follow_redirects,
            **extra,
        )
        log.info(
            "http node run=%s node=%s %s %s -> %d in %.0f ms",
            ctx.run_id,
            ctx.node_id,
            config.method.upper(),
            safe_url(response.url),
            response.status,
            (time.monotonic() - started) * 1000,
        )
        _check_status(config, response)
        return {"status": response.status, "headers": response.headers, "body": response.body()}


def _with_secrets(config: HttpConfig, ctx: NodeContext, values: dict[str, str]) -> HttpConfig:
    """``config`` with its secret placeholders filled; only the fields secrets are allowed in are touched."""
    if not values:
        return config
    return config.model_copy(
        update={
            "url": ctx.secret_slots.fill(config.url, values),
            "headers": ctx.secret_slots.fill(config.headers, values),
            "query": ctx.secret_slots.fill(config.query, values),
            "body": ctx.secret_slots.fill(config.body, values),
            "json_body": ctx.secret_slots.fill(config.json_body, values),
        }
    )


def _traced(headers: dict[str, str], traceparent: str | None) -> dict[str, str]:
    """``headers`` with the attempt's W3C ``traceparent`` (tracing on), unless the node sets its own."""
    if traceparent is None or any(name.lower() == "traceparent" for name in headers):
        return headers
    return {**headers, "traceparent": traceparent}


def _check_status(config: HttpConfig, response: FetchedResponse) -> None:
    status = response.status
    if config.expected_status is None:
        if 200 <= status < 300:
            return
        expected = "2xx"
    elif status in config.expected_status:
        return
    else:
        expected = str(config.expected_status)
    retryable = status >= 500 or (config.retry_on_4xx and 400 <= status < 500)
    raise NodeFailed(
        f"status {status} not in {expected} ({config.method.upper()} {safe_url(response.url)})",
        retryable=retryable,
        error_type="http_status",
    )


@asynccontextmanager
async def http_handler(
    settings: HttpNodeFields,
    *,
    secrets: SecretStore | None = None,
    resolver: Resolver | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> AsyncIterator[HttpHandler]:
    """Yield the ``http`` handler with the process's one pooled client, closed on exit.

    ``secrets`` resolves ``{{ secrets.NAME }}`` references (without it they fail their node); ``resolver`` and
    ``network_backend`` replace DNS and sockets (tests use them); production passes neither.
    """
    guard = SsrfGuard.from_settings(settings, resolver=resolver)
    async with create_http_client(
        max_connections=settings.http_max_connections, network_backend=network_backend
    ) as client:
        yield HttpHandler(HttpFetcher(client, guard), secrets)
