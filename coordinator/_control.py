"""Ending a run from outside its completion path."""

from __future__ import annotations

import json

from common.scripts import Scripts


async def cancel_run(scripts: Scripts, run_id: str, *, reason: str = "cancelled by request") -> str:
    """Cancel ``run_id``: it ends ``cancelled`` and in-flight handlers are told; returns the script's verdict.

    ``"ok"`` when cancelled now, ``"ended"`` when it had already ended, ``"missing"`` when unknown.
    """
    error = json.dumps({"type": "cancelled", "message": reason})
    result = await scripts.run_script("end_run", run_id, "cancelled", error)
    return str(result[0])
