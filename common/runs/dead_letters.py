"""The one shape of a ``wf.dlq`` entry: what was parked, from where, why, and which run it belongs to.

Every writer (the worker runtime, the coordinator, any stream consumer's dead-letter callback) builds a
``DeadLetter`` and appends ``stored()`` with ``XADD MAXLEN ~`` so the stream stays capped. Entries written before
this model (flat fields: ``stream``, ``entry_id``, ``reason`` and the token's ``t``, or the signal's ``s`` or
``signal``) read as the same model through ``DeadLetter.read``.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from common.runs.messages import WireModel
from common.runs.scripts import now_ms

DeadLetterKind = Literal["token", "signal", "entry"]
DEAD_LETTER_KINDS: tuple[DeadLetterKind, ...] = ("token", "signal", "entry")
# The stream field holding the model's JSON (as ``t`` holds a token's and ``e`` an event's).
FIELD = "d"
# The legacy flat shape's own fields; whatever else such an entry holds is the parked entry's fields.
_LEGACY_FIELDS = ("stream", "entry_id", "reason")


class DeadLetter(WireModel):
    """A message no consumer could handle: ``payload`` is its text as it was, so a replay sends it unchanged.

    ``payload`` is a token's JSON (kind ``token``), a completion signal's JSON (``signal``) or, for any other
    stream entry, a JSON object of its fields (``entry``). ``run_id``, ``node_id`` and ``token_id`` are read
    from the payload when it names them.
    """

    id: str | None = None
    kind: DeadLetterKind
    source: str
    source_id: str | None = None
    reason: str
    payload: str
    run_id: str | None = None
    node_id: str | None = None
    token_id: str | None = None
    by: str | None = None
    at_ms: float

    @classmethod
    def of_token(
        cls,
        stream: str,
        entry_id: str,
        fields: dict[str, str],
        reason: str,
        *,
        by: str | None,
    ) -> DeadLetter:
        """A task-stream entry; kind ``token`` when it has a token field (readable or not), else ``entry``."""
        if "t" not in fields:
            return cls.of_entry(stream, entry_id, fields, reason, by=by)
        payload = fields["t"]
        return cls(
            kind="token",
            source=stream,
            source_id=entry_id,
            reason=reason,
            payload=payload,
            by=by,
            at_ms=now_ms(),
            **_names(payload),
        )

    @classmethod
    def of_signal(cls, source: str, raw: str, reason: str, *, by: str | None) -> DeadLetter:
        """A completion signal taken from list ``source`` (it has no entry id)."""
        return cls(kind="signal", source=source, reason=reason, payload=raw, by=by, at_ms=now_ms(), **_names(raw))

    @classmethod
    def of_entry(
        cls,
        stream: str,
        entry_id: str,
        fields: dict[str, str],
        reason: str,
        *,
        by: str | None,
    ) -> DeadLetter:
        """Any other stream entry, its fields kept as one JSON object."""
        payload = json.dumps(fields, sort_keys=True)
        return cls(
            kind="entry",
            source=stream,
            source_id=entry_id,
            reason=reason,
            payload=payload,
            by=by,
            at_ms=now_ms(),
        )

    def stored(self) -> dict[str, str]:
        """The fields of the ``wf.dlq`` entry (the id is the entry's own)."""
        return {FIELD: self.model_dump_json(exclude={"id"}, exclude_none=True)}

    @classmethod
    def read(cls, entry_id: str, fields: dict[str, str]) -> DeadLetter:
        """The dead letter in ``wf.dlq`` entry ``entry_id``, of this model or of the flat shape written before it.

        Raises ``ValidationError`` for a malformed entry or a newer ``v``.
        """
        if FIELD in fields:
            return cls.model_validate_json(fields[FIELD]).model_copy(update={"id": entry_id})
        source, reason = fields.get("stream", ""), fields.get("reason", "")
        raw_signal = fields.get("s", fields.get("signal"))
        if raw_signal is not None:
            letter = cls.of_signal(source, raw_signal, reason, by=None)
        else:
            parked = {k: v for k, v in fields.items() if k not in _LEGACY_FIELDS}
            letter = cls.of_token(source, fields.get("entry_id", ""), parked, reason, by=None)
        # The stream entry id's first part is when it was written, in ms.
        at_ms = float(entry_id.split("-", 1)[0])
        return letter.model_copy(update={"id": entry_id, "at_ms": at_ms, "source_id": fields.get("entry_id")})

    def payload_value(self) -> Any:
        """The payload decoded from JSON, or its text when it is not JSON."""
        try:
            return json.loads(self.payload)
        except ValueError:
            return self.payload

    @property
    def epoch(self) -> str | None:
        """The run epoch of a token (the first part of ``<epoch>:<node>:<attempt>``), when it names one."""
        if self.token_id is None or ":" not in self.token_id:
            return None
        return self.token_id.split(":", 1)[0]


def _names(payload: str) -> dict[str, str]:
    """``run_id``, ``node_id`` and ``token_id`` of a payload, when it is a JSON object naming them as strings.

    Read leniently: a payload refused as a newer version or otherwise malformed still tells whose it is.
    """
    try:
        value = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {name: value[name] for name in ("run_id", "node_id", "token_id") if isinstance(value.get(name), str)}
