"""A JSON request body read and validated the way FastAPI does it for a ``body: Model`` parameter, for a route that
takes only the request (run submission: FastAPI's dependency solving costs more than the rest of that route's own
Python). Same order (an unparsable body is refused before the caller is authenticated), same errors."""

from __future__ import annotations

import email.message
import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request) -> Any:
    """The parsed JSON body; the raw bytes when its content type is not JSON; None when there is none.

    Raises the ``RequestValidationError`` FastAPI raises for a body that is not JSON.
    """
    raw = await request.body()
    if not raw:
        return None
    content_type = request.headers.get("content-type")
    if not content_type:
        return raw
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        error = {"type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error", "input": {}}
        raise RequestValidationError([error | {"ctx": {"error": exc.msg}}], body=exc.doc) from exc


def validated(model: type[M], body: Any) -> M:
    """``body`` (from ``read_json``) as ``model``; ``RequestValidationError`` located under ``body`` otherwise."""
    if body is None:
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}])
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=body) from None
