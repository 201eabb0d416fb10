"""The coordinator's decision about one completion: built once in Python, applied by ``apply_completion.lua``."""

from __future__ import annotations

from typing import Literal

from common.runs.messages import NodeError, WireModel

DecisionOutcome = Literal["succeeded", "failed", "retrying"]


class Decision(WireModel):
    """What applying one completion does to its run, decided on the IR at ``ir_version``.

    The script and the coordinator that writes this are always the same release (the coordinator loads the
    script), so Lua does not check ``v``.
    """

    token_id: str
    node_id: str
    attempt: int
    ir_version: int
    outcome: DecisionOutcome
    # (target, live) per outgoing edge; absent for a retry, which resolves no edge.
    edges: tuple[tuple[str, bool], ...] | None = None
    # The completion settled an approval: the run stops waiting for it.
    approval: bool = False
    fail_run: bool = False
    # The script adds it to the Redis clock: due times never depend on the deciding process's clock.
    retry_delay_ms: int | None = None
    output_ref: str | None = None
    branch: str | None = None
    error: NodeError | None = None
    worker_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None

    def for_lua(self) -> str:
        """The JSON the script reads, nulls left out."""
        # Lua's cjson turns JSON null into a userdata value that is truthy; leaving the key out keeps it nil.
        return self.model_dump_json(exclude_none=True)
