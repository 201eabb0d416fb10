"""A node's log lines, page by page: from ``logs:{R}:<node>`` while it lives, else from the Postgres archive.

Both sources hand out the same cursors (``<attempt>-<n>``, the stream's entry ids), so a reader can page on
across the stream's expiry.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query

from common.agent_protocol import classify_line
from orchestrator._errors import ApiError
from orchestrator._run_view import find_run
from orchestrator._schemas.streams import LogPageAnswer
from orchestrator._state import AppState, Reader, State

router = APIRouter(prefix="/api/v1", tags=["logs"])

MAX_LIMIT = 5_000
_CURSOR = re.compile(r"^(\d{1,10})-(\d{1,19})$")


@router.get("/runs/{run_id}/nodes/{node_id}/logs")
async def node_logs(
    run_id: str,
    node_id: str,
    state: State,
    caller: Reader,
    after: str | None = Query(default=None, max_length=40, description="the last line id seen (<attempt>-<n>)"),
    limit: int = Query(default=1000, ge=1, le=MAX_LIMIT, description="lines per page"),
) -> LogPageAnswer:
    """Lines after ``after``, oldest first: ``{items: [{id, attempt, kind, line, ts, more?}], next_cursor, ...}``.

    ``more``: a piece of a streamed text line that the next item continues. Archived lines carry neither ``ts`` nor
    ``more`` (the archive keeps the text only).
    """
    await find_run(state, caller.tenant_id, run_id)
    cursor = _parse_cursor(after)
    stream = state.keys.logs(run_id, node_id)
    if await state.redis.exists(stream):
        items = await _from_stream(state, stream, cursor, limit)
        source = "live"
    else:
        items = await _from_archive(state, run_id, node_id, cursor, limit)
        source = "archive"
    more = len(items) > limit
    items = items[:limit]
    truncated = await state.pool.fetchval(
        "SELECT bool_or(truncated) FROM node_logs WHERE run_id = $1 AND node_id = $2", run_id, node_id
    )
    return {
        "items": items,
        "next_cursor": items[-1]["id"] if more else None,
        "source": source,
        "truncated": bool(truncated),
    }


def _parse_cursor(after: str | None) -> tuple[int, int]:
    if after is None:
        return (0, 0)
    match = _CURSOR.match(after)
    if match is None:
        raise ApiError(400, f"after: expected a line id like 1-42 (<attempt>-<n>), got {after!r}")
    return int(match[1]), int(match[2])


async def _from_stream(state: AppState, stream: str, cursor: tuple[int, int], limit: int) -> list[dict[str, Any]]:
    start = "-" if cursor == (0, 0) else f"({cursor[0]}-{cursor[1]}"
    entries = await state.redis.xrange(stream, start, "+", count=limit + 1)
    return [
        {
            "id": entry_id,
            "attempt": int(fields.get("attempt", entry_id.split("-")[0])),
            "kind": fields.get("kind"),
            "line": fields.get("line", ""),
            "ts": int(fields["ts"]) if fields.get("ts") else None,
            **({"more": True} if fields.get("more") else {}),
        }
        for entry_id, fields in entries
    ]


async def _from_archive(
    state: AppState, run_id: str, node_id: str, cursor: tuple[int, int], limit: int
) -> list[dict[str, Any]]:
    rows = await state.pool.fetch(
        "SELECT attempt, text FROM node_logs WHERE run_id = $1 AND node_id = $2 AND attempt >= $3 ORDER BY attempt",
        run_id,
        node_id,
        cursor[0],
    )
    items: list[dict[str, Any]] = []
    for row in rows:
        attempt = row["attempt"]
        # The archive keeps lines only; their kind follows from the protocol, as it did when they were stored.
        lines = row["text"].split("\n") if row["text"] else []
        first = cursor[1] if attempt == cursor[0] else 0
        for n, line in enumerate(lines[first : first + limit + 1 - len(items)], start=first + 1):
            items.append(
                {"id": f"{attempt}-{n}", "attempt": attempt, "kind": classify_line(line), "line": line, "ts": None}
            )
        if len(items) > limit:
            break
    return items
