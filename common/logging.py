"""Process-wide logging: JSON lines or readable text, with the run, node and token ids of the current context.

Every line is redacted on its way out: credential-like strings always, and the secret values of the execution
in progress (``redacting``), so a library that logs a request with its headers cannot leak them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from json import dumps
from typing import Any

from common.redaction import Redactor

run_id_var: ContextVar[str | None] = ContextVar("aob_run_id", default=None)
node_id_var: ContextVar[str | None] = ContextVar("aob_node_id", default=None)
token_id_var: ContextVar[str | None] = ContextVar("aob_token_id", default=None)

redactor_var: ContextVar[Redactor | None] = ContextVar("aob_redactor", default=None)

_CONTEXT_VARS = {"run_id": run_id_var, "node_id": node_id_var, "token_id": token_id_var}
# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


@contextmanager
def log_context(
    *, run_id: str | None = None, node_id: str | None = None, token_id: str | None = None
) -> Iterator[None]:
    """Attach the given ids to every record logged inside the block; ids left as None are not changed."""
    given = {"run_id": run_id, "node_id": node_id, "token_id": token_id}
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = []
    for name, value in given.items():
        if value is not None:
            var = _CONTEXT_VARS[name]
            tokens.append((var, var.set(value)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def redacting(redactor: Redactor) -> Iterator[None]:
    """Redact ``redactor``'s secret values from every record logged inside the block (handlers format in the
    caller's context, so tasks started inside the block keep redacting)."""
    token = redactor_var.set(redactor)
    try:
        yield
    finally:
        redactor_var.reset(token)


def redact_line(line: str) -> str:
    """``line`` as it may be written: the current execution's secret values and credential-like strings gone."""
    redactor = redactor_var.get()
    return redactor.redact(line) if redactor is not None else Redactor.redact_patterns(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, the context ids that are set, extra fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update(_context_ids())
        payload.update(_extra_fields(record))
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return redact_line(dumps(payload, ensure_ascii=False, default=str))


class TextFormatter(logging.Formatter):
    """``ts LEVEL logger: msg key=value …`` with the context ids and extra fields as ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        fields = {**_context_ids(), **_extra_fields(record)}
        pairs = "".join(f" {key}={value}" for key, value in fields.items())
        line = f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}{pairs}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact_line(line)


class _AobHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler configure_logging installs; marked so a second call replaces it and leaves others alone.

    It writes to whatever ``sys.stderr`` is when a record is emitted, not the stream of the moment it was made:
    a caller that swaps stderr (a test capturing output) must not leave the handler on a closed file.
    """

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def configure_logging(level: str, json: bool) -> None:
    """Log records at ``level`` and above to stderr as JSON lines (``json``) or readable text."""
    root = logging.getLogger()
    for handler in [handler for handler in root.handlers if isinstance(handler, _AobHandler)]:
        root.removeHandler(handler)
    handler = _AobHandler()
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())


def _context_ids() -> dict[str, str]:
    return {name: value for name, var in _CONTEXT_VARS.items() if (value := var.get()) is not None}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}
