"""The agent program's stdout protocol: JSON system logs, plain model text lines, one sentinel-prefixed result line."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RESULT_PREFIX = "@@AOB_RESULT@@"
TEXT_ESCAPE = "text| "
"""Put before a model text line that would otherwise read as a system log or a result line."""

LineKind = Literal["result", "log", "text"]


class Usage(BaseModel):
    """Token counts summed over every model call, as the provider reported them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
        )


class AgentError(BaseModel):
    """Why an agent failed: ``type`` is one of the documented reasons (``max_steps``, ``timeout``, ...)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    message: str
    details: Any = None


class AgentResult(BaseModel):
    """The payload of the result line; ``output`` is ``finish.result`` (or the rejected raw result)."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["succeeded", "failed"]
    output: Any = None
    error: AgentError | None = None
    usage: Usage = Field(default_factory=Usage)
    steps: int = 0


def classify_line(line: str) -> LineKind:
    """Say whether a stdout line is the result, a system log (JSON object with ``ts`` and ``level``) or model text."""
    if line.startswith(RESULT_PREFIX):
        return "result"
    if line.startswith("{"):
        try:
            record = json.loads(line)
        except ValueError:
            return "text"
        if isinstance(record, dict) and "ts" in record and "level" in record:
            return "log"
    return "text"


def parse_result_line(line: str) -> AgentResult:
    """Parse a result line; raise ``ValueError`` naming what was wrong."""
    if not line.startswith(RESULT_PREFIX):
        raise ValueError(f"result line: expected the prefix {RESULT_PREFIX!r}, got {line[:40]!r}")
    try:
        return AgentResult.model_validate_json(line[len(RESULT_PREFIX) :].strip())
    except ValidationError as exc:
        raise ValueError(f"result line: invalid payload: {exc}") from None


class ProtocolWriter:
    """Writes protocol records to ``stream``, one flushed line each; model text is grouped into whole lines."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout
        self._partial = ""

    def log(self, level: str, msg: str, **fields: Any) -> None:
        """One system log record; ``fields`` must not hold secrets."""
        record = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds"), "level": level, "msg": msg, **fields}
        self._write(json.dumps(record, ensure_ascii=False, default=str))

    def text(self, chunk: str) -> None:
        """Add streamed model text; every completed line is printed at once."""
        *lines, self._partial = (self._partial + chunk).split("\n")
        for line in lines:
            self._text_line(line)

    def end_text(self) -> None:
        """Print the text still waiting for its newline (the model's turn ended)."""
        if self._partial:
            self._text_line(self._partial)
            self._partial = ""

    def result(self, result: AgentResult) -> None:
        self.end_text()
        self._write(f"{RESULT_PREFIX} {result.model_dump_json()}")

    def _text_line(self, line: str) -> None:
        line = line.rstrip("\r")
        if classify_line(line) != "text" or line.startswith(TEXT_ESCAPE):
            line = TEXT_ESCAPE + line
        self._write(line)

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()
