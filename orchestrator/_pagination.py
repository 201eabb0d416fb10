"""Opaque list cursors: the (created_at, id) of the last item, newest first."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from orchestrator._errors import ApiError

MAX_LIMIT = 200


def encode_cursor(created_at: datetime, item_id: str) -> str:
    """The cursor that continues after the item created at ``created_at`` with id ``item_id``."""
    raw = json.dumps([created_at.isoformat(), item_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor stands for; 422 when it is not one this API issued."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, item_id = json.loads(raw)
        return datetime.fromisoformat(created_at), str(item_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ApiError(422, f"cursor: expected a next_cursor value returned by this API, got {cursor[:40]!r}") from exc
