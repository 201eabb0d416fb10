"""Every answer checked against the app's own OpenAPI document: its status is documented for its operation, its
media type too, and a JSON body follows the schema given there. ``running_api`` checks every answer its tests get,
so a documented model cannot drift from what its route returns."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Match

# Bodies that are not JSON: only their media type is checked.
_UNREAD = ("text/event-stream", "text/plain")


class AnswerCheck:
    """Checks answers of ``app`` against ``app.openapi()``; use ``hook`` as an httpx response event hook."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.document = app.openapi()
        self._validators: dict[tuple[str, str, str, str], jsonschema_rs.Validator] = {}

    def operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | None:
        """The documented path and operation that serve ``method path``; None when no documented route does."""
        scope = {"type": "http", "method": method, "path": path, "root_path": ""}
        for context in iter_route_contexts(self.app.routes):
            route = context.original_route
            if isinstance(route, APIRoute) and route.include_in_schema and context.matches(scope)[0] is Match.FULL:
                path_format = str(context.path_format)
                operation: dict[str, Any] = self.document["paths"][path_format][method.lower()]
                return path_format, operation
        return None

    async def hook(self, response: httpx.Response) -> None:
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in _UNREAD:
            await response.aread()
        self.check(response.request.method, response.request.url.path, response, media_type)

    def check(self, method: str, path: str, response: httpx.Response, media_type: str | None = None) -> None:
        """Raise ``AssertionError`` saying what differs unless ``response`` is what the document promises."""
        found = self.operation(method, path)
        if found is None:
            if response.status_code >= 400:
                self._check_body("*", method, "4XX", _error_response(self.document), response, media_type)
            return
        path_format, operation = found
        responses: dict[str, Any] = operation["responses"]
        status = str(response.status_code)
        key = next((k for k in (status, f"{status[0]}XX", "default") if k in responses), None)
        what = f"{method} {path} ({path_format}) -> {status}"
        assert key is not None, f"{what}: status not documented (documented: {sorted(responses)})"
        self._check_body(path_format, method, key, responses[key], response, media_type)

    def _check_body(
        self,
        path_format: str,
        method: str,
        key: str,
        documented: dict[str, Any],
        response: httpx.Response,
        media_type: str | None,
    ) -> None:
        what = f"{method} {response.request.url.path} ({path_format}) -> {response.status_code}"
        content: dict[str, Any] = documented.get("content", {})
        media_type = media_type or response.headers.get("content-type", "").split(";")[0].strip()
        if not content:
            assert not response.content, f"{what}: documented without a body, got {response.content[:200]!r}"
            return
        assert media_type in content, f"{what}: media type {media_type!r} not documented ({sorted(content)})"
        if media_type != "application/json":
            return
        validator = self._validator(path_format, method, key, media_type, content[media_type].get("schema", {}))
        errors = [
            f"{'/'.join(map(str, e.instance_path)) or '(body)'}: {e.message}"
            for e in validator.iter_errors(response.json())
        ]
        assert not errors, f"{what}: answer does not follow the document:\n  " + "\n  ".join(errors[:20])

    def _validator(
        self, path_format: str, method: str, key: str, media_type: str, schema: dict[str, Any]
    ) -> jsonschema_rs.Validator:
        cache_key = (path_format, method, key, media_type)
        if cache_key not in self._validators:
            # The components ride along, so that '#/components/schemas/...' resolves inside the schema itself.
            root = {**schema, "components": self.document["components"]}
            self._validators[cache_key] = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
        return self._validators[cache_key]


def _error_response(document: dict[str, Any]) -> dict[str, Any]:
    """How the document describes a refusal (the same for every operation)."""
    for methods in document["paths"].values():
        for operation in methods.values():
            refusal: dict[str, Any] = operation["responses"]["4XX"]
            return refusal
    raise AssertionError("the document has no operation")
