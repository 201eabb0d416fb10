"""Following the program's call lines: each answered in its own task (a bounded number at once), the reply written
back to the program's stdin, and the worker's own log lines (model text, refusals) passed on to the node's log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from common.agent_protocol import AgentError, CallReply, CallRequest, ProtocolWriter, parse_call_line
from workers.agent._logs import NodeLog
from workers.agent._mediator import CallMediator

logger = logging.getLogger(__name__)

# Calls in flight at once per execution; a program asking for more waits, as its output is not read meanwhile.
MAX_CALLS_IN_FLIGHT = 8


class LogSink:
    """The stream of the worker's ``ProtocolWriter`` for an execution: lines wait here until ``drain`` logs them.

    Text written without a line end (``ProtocolWriter.words``) is logged as a piece the next entry continues.
    """

    def __init__(self, log: NodeLog) -> None:
        self._log = log
        self._pending: list[tuple[str, bool]] = []

    def write(self, text: str, /) -> int:
        *lines, piece = text.split("\n")
        self._pending.extend((line, False) for line in lines)
        if piece:
            self._pending.append((piece, True))
        return len(text)

    def flush(self) -> None:
        """Nothing to do: ``drain`` passes the lines on."""

    async def drain(self) -> None:
        """Add the waiting lines to the node's log, in order."""
        lines, self._pending = self._pending, []
        for line, more in lines:
            await self._log.add(line, more=more)


class CallDispatcher:
    """Answers call lines through the mediator and sends each reply with ``send`` (one line of JSON); ``drain``
    passes on what ``writer`` (the worker's own log lines) holds before each reply."""

    def __init__(
        self,
        mediator: CallMediator,
        send: Callable[[bytes], Awaitable[None]],
        writer: ProtocolWriter,
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        self._mediator = mediator
        self._send = send
        self._writer = writer
        self._drain = drain
        self._slots = asyncio.Semaphore(MAX_CALLS_IN_FLIGHT)
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, line: str) -> None:
        """Start answering a call line; waits while ``MAX_CALLS_IN_FLIGHT`` calls are being answered."""
        try:
            request = parse_call_line(line)
        except ValueError as exc:
            # Without a readable id there is nobody to answer: the program's call waits until its deadline.
            self._writer.log("ERROR", "unreadable call from the agent program", error=str(exc)[:500])
            await self._drain()
            return
        await self._slots.acquire()
        task = asyncio.create_task(self._answer(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, request: CallRequest) -> None:
        try:
            try:
                reply = await self._mediator.answer(request)
            except Exception as exc:  # Redis or a bug: the program is told, rather than left waiting
                logger.exception("agent call %d (%s) failed in the worker", request.id, request.call.kind)
                error = AgentError(
                    type="worker_error", message=f"the worker could not carry out the call: {type(exc).__name__}"
                )
                reply = CallReply(id=request.id, error=error)
            await self._drain()
            await self._send(reply.model_dump_json().encode() + b"\n")
        except Exception as exc:  # the program has gone: its output ends and the handler sees why
            logger.warning("agent call %d: the reply could not be sent: %s", request.id, exc)
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Stop the calls still in flight (the program has ended or is being stopped)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._drain()
