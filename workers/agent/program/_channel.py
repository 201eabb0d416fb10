"""The program's side of call mediation: call lines out on stdout, their replies in on stdin, paired by id."""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from common.agent_protocol import (
    CALL_PREFIX,
    Call,
    CallReply,
    CallRequest,
    HttpCall,
    HttpReply,
    ModelCall,
    ModelReply,
    PatchCall,
    PatchReply,
    ProtocolWriter,
)
from common.errors import AobError

R = TypeVar("R", bound=BaseModel)
_READ_BYTES = 65_536


class RawLines:
    """Lines from a file descriptor read with ``os.read``: unlike ``sys.stdin``, a thread blocked in it holds no
    lock, so the interpreter can exit while it waits."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._ended = False

    def readline(self) -> bytes:
        """The next line with its newline, the last bytes without one, or ``b""`` at the end."""
        while b"\n" not in self._buffer and not self._ended:
            chunk = os.read(self._fd, _READ_BYTES)
            self._ended = not chunk
            self._buffer += chunk
        line, newline, self._buffer = self._buffer.partition(b"\n")
        return line + newline


class CallRefused(AobError):
    """The worker refused or could not carry out a call; ``error_type`` says why (``budget_exceeded``, ...)."""

    code = "call_refused"

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class WorkerChannel:
    """Sends calls to the worker and waits for their replies; any number may be in flight at once."""

    def __init__(self, writer: ProtocolWriter, *, max_call_bytes: int) -> None:
        self._writer = writer
        self._max_call_bytes = max_call_bytes
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[CallReply]] = {}
        self._closed: str | None = None

    def listen(self, stdin: RawLines) -> None:
        """Read replies from ``stdin`` in a thread (a blocking read works on pipes, sockets and files alike)."""
        loop = asyncio.get_running_loop()

        def read() -> None:
            try:
                for raw in iter(stdin.readline, b""):
                    loop.call_soon_threadsafe(self._deliver, raw)
                loop.call_soon_threadsafe(self._close, "the worker closed the program's stdin")
            except RuntimeError:  # the agent has ended and its loop is closed: nobody waits for replies
                return

        threading.Thread(target=read, name="agent-replies", daemon=True).start()

    async def model_turn(self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]) -> ModelReply:
        """The model's next reply; raises ``CallRefused`` (``budget_exceeded``, ``provider_error``, ...)."""
        return await self._call(ModelCall(messages=list(messages), tools=list(tools)), ModelReply)

    async def http(self, call: HttpCall) -> HttpReply:
        """A request through the worker's SSRF guard; raises ``CallRefused`` when refused or failed."""
        return await self._call(call, HttpReply)

    async def patch(self, call: PatchCall) -> PatchReply:
        """A patch of this run's workflow; the API's refusals come back as a reply, not an error."""
        return await self._call(call, PatchReply)

    async def _call(self, call: Call, reply_type: type[R]) -> R:
        if self._closed is not None:
            raise CallRefused("worker_gone", self._closed)
        request = CallRequest(id=next(self._ids), call=call)
        size = len(CALL_PREFIX) + 1 + len(request.model_dump_json().encode())
        if size > self._max_call_bytes:
            raise CallRefused(
                "call_too_large", f"{call.kind} call of {size} bytes exceeds the limit of {self._max_call_bytes}"
            )
        future: asyncio.Future[CallReply] = asyncio.get_running_loop().create_future()
        self._waiting[request.id] = future
        try:
            self._writer.call(request)
            reply = await future
        finally:
            self._waiting.pop(request.id, None)
        if reply.error is not None:
            raise CallRefused(reply.error.type, reply.error.message)
        try:
            return reply_type.model_validate(reply.result or {})
        except ValidationError as exc:
            raise CallRefused("bad_reply", f"{call.kind} reply: {exc.errors()[0]['msg']}") from None

    def _deliver(self, raw: bytes) -> None:
        try:
            reply = CallReply.model_validate_json(raw)
        except ValidationError as exc:
            self._writer.log("WARNING", "unreadable reply from the worker", error=exc.errors()[0]["msg"])
            return
        future = self._waiting.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply)

    def _close(self, reason: str) -> None:
        self._closed = reason
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CallRefused("worker_gone", reason))
