"""The program's channel to the worker over real pipes: calls out as lines, replies in by id, limits and endings."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import Awaitable, Callable, Iterator

import pytest

from common.agent_protocol import (
    CallReply,
    HttpCall,
    HttpReply,
    ModelReply,
    ProtocolWriter,
    classify_line,
    parse_call_line,
)
from tests.support.eventually import eventually
from workers.agent.program._channel import CallRefused, RawLines, WorkerChannel


def written(out: io.StringIO, lines: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return out.getvalue().count("\n") >= lines

    return check


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        with contextlib.suppress(OSError):
            os.close(fd)


def test_raw_lines_split_across_reads_and_end_without_a_newline(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b'{"job": 1}\n{"v": 1, "id": 1}\nlast')
    os.close(write_fd)
    lines = RawLines(read_fd)
    assert [lines.readline() for _ in range(4)] == [b'{"job": 1}\n', b'{"v": 1, "id": 1}\n', b"last", b""]


async def test_calls_in_flight_together_get_their_own_replies(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    out = io.StringIO()
    channel = WorkerChannel(ProtocolWriter(out), max_call_bytes=1024 * 1024)
    channel.listen(RawLines(read_fd))
    model = asyncio.create_task(channel.model_turn([{"role": "user", "content": "hi"}], []))
    http = asyncio.create_task(channel.http(HttpCall(method="GET", url="http://x/")))
    await eventually(written(out, 2), 5)
    requests = [parse_call_line(line) for line in out.getvalue().splitlines() if classify_line(line) == "call"]
    kinds = {request.call.kind: request.id for request in requests}
    # Answered in the other order: ids, not order, pair them.
    replies = [
        CallReply(id=kinds["http"], result=HttpReply(status=204, url="http://x/").model_dump()),
        CallReply(id=kinds["model"], result=ModelReply(text="hello").model_dump()),
    ]
    os.write(write_fd, b"".join(reply.model_dump_json().encode() + b"\n" for reply in replies))
    assert (await model).text == "hello"
    assert (await http).status == 204


async def test_a_refusal_a_too_large_call_and_a_closed_stdin_raise_call_refused(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    out = io.StringIO()
    channel = WorkerChannel(ProtocolWriter(out), max_call_bytes=1024)
    channel.listen(RawLines(read_fd))
    with pytest.raises(CallRefused, match="exceeds the limit of 1024") as too_large:
        await channel.model_turn([{"role": "user", "content": "x" * 2000}], [])
    assert too_large.value.error_type == "call_too_large" and out.getvalue() == ""

    refused = asyncio.create_task(channel.model_turn([], []))
    await eventually(written(out, 1), 5)
    reply = CallReply(id=parse_call_line(out.getvalue().strip()).id, error={"type": "budget_exceeded", "message": "no"})
    os.write(write_fd, reply.model_dump_json().encode() + b"\n")
    with pytest.raises(CallRefused) as caught:
        await refused
    assert caught.value.error_type == "budget_exceeded"

    waiting = asyncio.create_task(channel.http(HttpCall(method="GET", url="http://x/")))
    await asyncio.sleep(0)
    os.close(write_fd)
    with pytest.raises(CallRefused) as gone:
        await waiting
    assert gone.value.error_type == "worker_gone"
