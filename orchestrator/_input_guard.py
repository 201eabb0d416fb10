"""Refuse, before any route runs, request text that Postgres, Redis or strict JSON cannot hold.

Postgres refuses NUL in ``text`` and ``jsonb``; UTF-8 (asyncpg, redis-py) cannot encode an unpaired surrogate; and
``NaN``/``Infinity``, which Python's JSON parser accepts, are not JSON to Postgres or any other reader. One check at
the edge covers every route, field and parameter, so no route has to remember it; the answer is a 422 naming where.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator._errors import error_body, replaying

_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")
# A body can only carry the above as JSON escapes or number literals; bodies without one skip the parse.
_SUSPECT_BODY = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})|NaN|Infinity|[eE][+-]?[0-9]{3}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_REPORTED = 20
TEXT_MESSAGE = "text may not contain NUL characters or unpaired surrogates"
NUMBER_MESSAGE = "expected a finite number (NaN, Infinity and overflowing literals are not JSON)"


class _NonStandard:
    """What ``NaN``, ``Infinity`` and ``-Infinity`` parse to here, so that the walk can say where they were."""


_NON_STANDARD = _NonStandard()


def body_problems(body: bytes) -> list[dict[str, str]]:
    """``{path, message}`` for each string or number in JSON ``body`` that cannot be stored; [] when none (or not
    JSON: the route's own parsing answers that)."""
    if not _SUSPECT_BODY.search(body):
        return []
    try:
        document = json.loads(body, parse_constant=lambda _: _NON_STANDARD)
    except (ValueError, RecursionError):
        return []
    problems: list[dict[str, str]] = []
    # Iterative, so that a deeply nested document cannot exhaust the stack here.
    pending: list[tuple[str, Any]] = [("body", document)]
    while pending and len(problems) < _MAX_REPORTED:
        path, value = pending.pop()
        if isinstance(value, str):
            if _BAD_TEXT.search(value):
                problems.append({"path": path, "message": TEXT_MESSAGE})
        elif (isinstance(value, float) and not math.isfinite(value)) or value is _NON_STANDARD:
            problems.append({"path": path, "message": NUMBER_MESSAGE})
        elif isinstance(value, dict):
            for key, item in value.items():
                if _BAD_TEXT.search(key):
                    # Escaped: the path itself goes into the answer, which must be valid UTF-8.
                    key = ascii(key)
                    problems.append({"path": f"{path}.{key}", "message": "key: " + TEXT_MESSAGE})
                pending.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    return sorted(problems, key=lambda problem: problem["path"])


def url_problems(scope: Scope) -> list[dict[str, str]]:
    """``{path, message}`` for a URL path or query parameter holding NUL (percent-decoding makes ``%00`` one)."""
    problems = []
    if "\x00" in scope["path"]:
        problems.append({"path": "path", "message": TEXT_MESSAGE})
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            problems.append({"path": f"query.{name.replace(chr(0), '?')}", "message": TEXT_MESSAGE})
    return problems


class InputGuardMiddleware:
    """Answer 422 to requests whose URL or JSON body holds text or numbers that cannot be stored."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problems = url_problems(scope)
        if problems:
            await _refuse(problems, scope, receive, send)
            return
        if scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        # The body limit (the middleware outside this one) has bounded what is read here.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        problems = body_problems(body)
        if problems:
            await _refuse(problems, scope, receive, send)
            return
        await self.app(scope, replaying(body, receive), send)


async def _refuse(problems: list[dict[str, str]], scope: Scope, receive: Receive, send: Send) -> None:
    message = "; ".join(f"{problem['path']}: {problem['message']}" for problem in problems)
    response = JSONResponse(error_body("validation_failed", message, problems), 422)
    await response(scope, receive, send)
