"""Typed payloads that cross Redis: tokens, completion signals, events, child-run ends. Each carries a version ``v``.

A reader accepts its own ``v`` (an absent ``v`` is 1, what was written before versions) and refuses a newer one:
validation fails with ``UnsupportedVersion`` inside the ``ValidationError``, so the reader's malformed-message
path (log, metric, dead-letter where it has one) handles it and a reader never acts on what it cannot know.
A model that bumps its ``v`` keeps reading the older shape for as long as such messages may sit in Redis.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.errors import AobError

SignalStatus = Literal["succeeded", "failed", "skipped", "decided"]
RunStatus = Literal["queued", "running", "waiting", "succeeded", "failed", "cancelled", "timed_out"]
TERMINAL_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled", "timed_out"})


class UnsupportedVersion(AobError, ValueError):
    """A message's ``v`` is newer than this process reads (also a ValueError, so pydantic reports it)."""

    code = "unsupported_version"

    def __init__(self, model: str, version: int, known: int) -> None:
        super().__init__(f"{model} v{version} is newer than this process reads (v{known}): upgrade the reader first")
        self.model = model
        self.version = version
        self.known = known


def unsupported_version(exc: ValidationError) -> UnsupportedVersion | None:
    """The version refusal inside ``exc``, or None when the message is malformed in another way."""
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, UnsupportedVersion):
            return cause
    return None


class WireModel(BaseModel):
    """Base of every payload crossing Redis: immutable, unknown fields ignored, schema version in ``v``.

    Adding an optional field keeps ``v``; removing, renaming or changing the meaning of one bumps it.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: int = Field(default=1, ge=1)

    @classmethod
    def schema_version(cls) -> int:
        """The schema version this model writes and the newest it reads (the default of its ``v``)."""
        return int(cls.model_fields["v"].default)

    @model_validator(mode="before")
    @classmethod
    def _refuse_newer(cls, data: Any) -> Any:
        # Checked before the fields: a newer shape must be reported as newer, not as whichever field broke.
        if isinstance(data, dict):
            v = data.get("v")
            # Every schema starts at 1: the common case skips looking the model's version up.
            if isinstance(v, int) and v > 1 and v > cls.schema_version():
                raise UnsupportedVersion(cls.__name__, v, cls.schema_version())
        return data


class Token(WireModel):
    """One scheduled execution of one node."""

    token_id: str
    run_id: str
    node_id: str
    type: str
    attempt: int
    ir_version: int
    # An approval timeout comes back on the hitl stream as a token of the node it belongs to.
    purpose: Literal["run", "approval_timeout"] = "run"
    approval_id: str | None = None
    # The W3C trace context of the run (set when it started with tracing on): its spans join the run's trace.
    traceparent: str | None = None

    @property
    def epoch(self) -> str:
        """The life of the run this token belongs to (bumped by each resume): its id's first part."""
        return self.token_id.partition(":")[0]


class NodeError(BaseModel):
    """Why a node execution failed and whether trying again may help."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str = "error"
    message: str
    retryable: bool = True


class TokenIdentity(Protocol):
    """What names one token: its run, node, id and attempt (a ``Token`` or anything carrying the same)."""

    @property
    def run_id(self) -> str: ...

    @property
    def node_id(self) -> str: ...

    @property
    def token_id(self) -> str: ...

    @property
    def attempt(self) -> int: ...


class CompletionSignal(WireModel):
    """A worker's report that one token finished; ``output_ref`` is inline JSON text or a ``cas://`` ref.

    Build one with ``succeeded``, ``failed`` or ``decided``: each copies the token's identity the same way.
    """

    run_id: str
    node_id: str
    token_id: str
    attempt: int
    status: SignalStatus
    output_ref: str | None = None
    branch: str | None = None
    error: NodeError | None = None
    worker_id: str | None = None
    started_at_ms: float | None = None
    ended_at_ms: float | None = None
    # The IR version the token was queued under (absent when its maker did not know it, e.g. an approval row):
    # a coordinator holding an older IR reloads it before deciding.
    ir_version: int | None = None
    # The token's trace context: the coordinator's span for this signal joins the run's trace.
    traceparent: str | None = None

    @property
    def epoch(self) -> int:
        """The life of the run the token belonged to (its id's first part; 0 when the id has none)."""
        head = self.token_id.partition(":")[0]
        return int(head) if head.isdigit() else 0

    @classmethod
    def succeeded(
        cls,
        token: TokenIdentity,
        output_ref: str | None,
        *,
        ended_at_ms: float,
        branch: str | None = None,
        worker_id: str | None = None,
        started_at_ms: float | None = None,
    ) -> Self:
        """The completion of a token whose attempt produced ``output_ref``."""
        return cls(
            **_identity(token),
            status="succeeded",
            output_ref=output_ref,
            branch=branch,
            worker_id=worker_id,
            started_at_ms=started_at_ms,
            ended_at_ms=ended_at_ms,
        )

    @classmethod
    def failed(
        cls,
        token: TokenIdentity,
        error: NodeError | None,
        *,
        ended_at_ms: float,
        worker_id: str | None = None,
        started_at_ms: float | None = None,
    ) -> Self:
        """The completion of a token whose attempt failed with ``error`` (the coordinator decides on retries)."""
        return cls(
            **_identity(token),
            status="failed",
            error=error,
            worker_id=worker_id,
            started_at_ms=started_at_ms,
            ended_at_ms=ended_at_ms,
        )

    @classmethod
    def decided(cls, token: TokenIdentity, output_ref: str, branch: str, *, ended_at_ms: float) -> Self:
        """The completion of a hitl token whose approval was settled (``branch`` approved or rejected)."""
        return cls(**_identity(token), status="decided", output_ref=output_ref, branch=branch, ended_at_ms=ended_at_ms)


def _identity(token: TokenIdentity) -> dict[str, Any]:
    identity = {"run_id": token.run_id, "node_id": token.node_id, "token_id": token.token_id, "attempt": token.attempt}
    return identity | {
        "ir_version": getattr(token, "ir_version", None),
        "traceparent": getattr(token, "traceparent", None),
    }


class Event(WireModel):
    """One entry of a run's event log; ``id`` is the stream entry id (the resume cursor), absent when stored."""

    id: str | None = None
    type: str
    run_id: str
    node_id: str | None = None
    ts: int
    data: dict[str, Any] = {}

    def stored(self) -> str:
        """The JSON kept in field ``e`` of an events stream entry (the id is the entry's own)."""
        # json.dumps escapes what pydantic's encoder refuses (a lone surrogate in a comment or a log line).
        return json.dumps(self.model_dump(mode="json", exclude={"id"}, exclude_none=True))


class ChildRunEnded(WireModel):
    """How a child run ended, appended to ``wf.children`` once its outcome (outputs or error) is complete."""

    run_id: str
    parent_run_id: str
    parent_node_id: str | None = None
    status: RunStatus
    outputs: Any = None
    error: dict[str, Any] | None = None
