"""Ending a run from outside its completion path."""

from __future__ import annotations

import json

from common.runs.scripts import Scripts


async def cancel_run(scripts: Scripts, run_id: str, *, reason: str = "cancelled by request") -> str:
    """Cancel ``run_id`` and every run below it: they end ``cancelled`` and in-flight handlers are told.

    Returns the verdict for ``run_id``: ``"ok"`` when cancelled now, ``"ended"`` when it had already ended,
    ``"missing"`` when unknown. Descendants are cancelled either way (a parent that ended otherwise, e.g. timed
    out, must not leave children running).
    """
    error = json.dumps({"type": "cancelled", "message": reason})
    result = await scripts.run_script("end_run", run_id, "cancelled", error)
    await cancel_descendants(scripts, run_id, reason=f"{reason} (ancestor run {run_id})")
    return str(result[0])


async def cancel_descendants(scripts: Scripts, run_id: str, *, reason: str) -> int:
    """Cancel every child run below ``run_id`` (children, their children, ...); returns how many ended now."""
    error = json.dumps({"type": "cancelled", "message": reason})
    cancelled = 0
    seen = {run_id}
    pending = [run_id]
    while pending:
        children = await scripts.redis.smembers(scripts.keys.child_runs(pending.pop()))
        for child in sorted(set(children) - seen):
            seen.add(child)
            pending.append(child)
            result = await scripts.run_script("end_run", child, "cancelled", error)
            cancelled += result[0] == "ok"
    return cancelled
