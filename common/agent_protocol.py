"""The agent program's protocol with the worker that runs it.

stdout: JSON system logs, plain model text lines, sentinel-prefixed call lines (the program asks the worker to call
the model or a tool for it), sentinel-prefixed span lines (its OpenTelemetry spans, which the worker exports for it)
and one sentinel-prefixed result line. stdin: the job as the first line, then one reply
line per call. The program holds no network access and no credentials of its own: every call goes through the worker.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError

RESULT_PREFIX = "@@AOB_RESULT@@"
CALL_PREFIX = "@@AOB_CALL@@"
SPANS_PREFIX = "@@AOB_SPANS@@"
TEXT_ESCAPE = "text| "
"""Put before a model text line that would otherwise read as a system log, a call or a result line."""

LineKind = Literal["result", "call", "spans", "log", "text"]


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
    """Say whether a stdout line is the result, a call, a system log (JSON object with ``ts`` and ``level``) or
    model text."""
    if line.startswith(RESULT_PREFIX):
        return "result"
    if line.startswith(CALL_PREFIX):
        return "call"
    if line.startswith(SPANS_PREFIX):
        return "spans"
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


class LineStream(Protocol):
    """Where a ``ProtocolWriter`` writes: stdout in the program, the node's log in the worker."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class ProtocolWriter:
    """Writes protocol records to ``stream``, one flushed line each; model text is grouped into whole lines."""

    def __init__(self, stream: LineStream | None = None) -> None:
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

    def words(self) -> None:
        """Print the waiting partial line up to its last whitespace as a piece without a line end, so a long line
        streams a few words at a time; the rest waits for more text."""
        cut = max(self._partial.rfind(" "), self._partial.rfind("\t")) + 1
        if cut == 0:
            return
        piece, self._partial = self._partial[:cut], self._partial[cut:]
        self._stream.write(_escaped(piece))
        self._stream.flush()

    def result(self, result: AgentResult) -> None:
        self.end_text()
        self._write(f"{RESULT_PREFIX} {result.model_dump_json()}")

    def call(self, request: CallRequest) -> None:
        """Ask the worker for a model or tool call; the reply comes on stdin."""
        self.end_text()
        self._write(f"{CALL_PREFIX} {request.model_dump_json()}")

    def spans(self, encoded: str) -> None:
        """Hand the worker finished spans: ``encoded`` is a base64 OTLP/protobuf trace export request."""
        self._write(f"{SPANS_PREFIX} {encoded}")

    def _text_line(self, line: str) -> None:
        self._write(_escaped(line.rstrip("\r")))

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()


def _escaped(text: str) -> str:
    """``text`` with ``TEXT_ESCAPE`` put before it when it would read as a system log, a call or a result line."""
    if classify_line(text) != "text" or text.startswith(TEXT_ESCAPE):
        return TEXT_ESCAPE + text
    return text


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ToolCall(_Message):
    """A tool call as the model made it; ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str


class ModelCall(_Message):
    """Ask for the model's next reply to ``messages``; the worker picks the model, key and limits."""

    kind: Literal["model"] = "model"
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = Field(default_factory=list)


class HttpCall(_Message):
    """Ask for an HTTP request through the worker's SSRF guard; a ``json`` body is sent as application/json."""

    kind: Literal["http"] = "http"
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    url: str
    headers: dict[str, str] | None = None
    body: Any = None
    body_format: Literal["text", "json"] = "json"


class PatchCall(_Message):
    """Ask for a JSON Patch of this run's workflow; the worker holds the run-scoped token."""

    kind: Literal["patch"] = "patch"
    ops: list[dict[str, Any]] = Field(min_length=1)
    reason: str | None = None


Call = Annotated[ModelCall | HttpCall | PatchCall, Field(discriminator="kind")]


class CallRequest(_Message):
    """A call line's payload: ``id`` pairs it with its reply (calls may be in flight together)."""

    v: Literal[1] = 1
    id: int = Field(ge=0)
    call: Call


class ModelReply(_Message):
    """One assistant reply: its text, the tool calls it made and the usage the provider reported."""

    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    usage_reported: bool = True

    def as_message(self) -> dict[str, Any]:
        """The assistant message to append to the conversation."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
                for call in self.tool_calls
            ]
        return message


class HttpReply(_Message):
    """The final response of a guarded request; ``url`` without credentials or query, ``body`` parsed if JSON."""

    status: int
    url: str
    content_type: str | None = None
    body: Any = None


class PatchReply(_Message):
    """The API's answer to a patch: its status and JSON (or text) body."""

    status: int
    body: Any = None


class CallReply(_Message):
    """A reply line on stdin: ``result`` (a ``ModelReply``, ``HttpReply`` or ``PatchReply``) or an ``error``."""

    v: Literal[1] = 1
    id: int
    result: dict[str, Any] | None = None
    error: AgentError | None = None


def parse_call_line(line: str) -> CallRequest:
    """Parse a call line; raise ``ValueError`` naming what was wrong."""
    if not line.startswith(CALL_PREFIX):
        raise ValueError(f"call line: expected the prefix {CALL_PREFIX!r}, got {line[:40]!r}")
    try:
        return CallRequest.model_validate_json(line[len(CALL_PREFIX) :].strip())
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(call)'}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"call line: {problems}") from None
