"""JSON answers rendered by orjson: the bytes pydantic's serializer (FastAPI's own path) gives, several times faster."""

from __future__ import annotations

from typing import Any

import orjson
import pydantic_core
from starlette.responses import JSONResponse

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(content: Any) -> bytes:
    """``content`` as compact UTF-8 JSON; integers past 64 bits (valid JSON inputs) go through pydantic instead."""
    try:
        return orjson.dumps(content, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return pydantic_core.to_json(content)


class OrjsonResponse(JSONResponse):
    """The API's default response class."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
