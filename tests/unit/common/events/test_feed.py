"""A feed hands out events in chunks: queued live batches merged, bounded in bytes, gaps filled, ends at the end;
and a caught-up consumer's live batches go straight to its sink while its connection can take them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from common.events.feed import Chunk, EventFeed
from common.events.frames import WireEvent, wire_event
from common.events.history import EventHistory
from common.events.hub import Hub

STREAM = "events:{r1}"


def event(ms: int, event_type: str = "node_succeeded") -> WireEvent:
    return wire_event(f"{ms}-0", {"type": event_type, "run_id": "r1", "node_id": "a", "ts": ms, "data": {}})


class StoredHistory(EventHistory):
    """The history as a list: what Redis would answer for the stream."""

    def __init__(self, events: list[WireEvent]) -> None:
        self.events = events
        self.page_size = 500

    async def pages(self, stream: str, after: str = "0-0", run_id: str | None = None) -> AsyncIterator[list[WireEvent]]:
        page = [e for e in self.events if int(e.id.split("-")[0]) > int(after.split("-")[0])]
        if page:
            yield page


async def take(chunks: AsyncIterator[Chunk], n: int) -> list[Chunk]:
    return [await anext(chunks) for _ in range(n)]


def ids(chunk: Chunk) -> list[str]:
    return [e.id for e in chunk.events]


async def test_batches_queued_while_the_client_was_busy_come_out_merged_and_bounded() -> None:
    hub = Hub(queue_size=100)
    async with EventFeed(hub, StoredHistory([]), STREAM, "0-0", "r1") as feed:
        hub.start(STREAM, "0-0")
        # Three reads happened before the client asked: they go out together, split where the frames pass the bound.
        hub.dispatch(STREAM, "0-0", (event(1), event(2)))
        hub.dispatch(STREAM, "2-0", (event(3),))
        hub.dispatch(STREAM, "3-0", (event(4), event(5)))
        bound = sum(len(event(i).ws_frame) for i in (1, 2, 3))
        chunks = feed.chunks(max_bytes=bound)
        first, second = await take(chunks, 2)
        assert (ids(first), ids(second)) == (["1-0", "2-0", "3-0"], ["4-0", "5-0"])
        assert first.live and second.live
        await chunks.aclose()


async def test_an_event_larger_than_the_bound_goes_alone() -> None:
    hub = Hub(queue_size=100)
    async with EventFeed(hub, StoredHistory([]), STREAM, "0-0", "r1") as feed:
        hub.start(STREAM, "0-0")
        hub.dispatch(STREAM, "0-0", (event(1), event(2)))
        chunks = feed.chunks(max_bytes=1)
        assert [ids(c) for c in await take(chunks, 2)] == [["1-0"], ["2-0"]]
        await chunks.aclose()


async def test_a_batch_past_what_was_delivered_is_preceded_by_the_history_without_duplicates() -> None:
    history = StoredHistory([event(i) for i in range(1, 6)])
    hub = Hub(queue_size=100)
    async with EventFeed(hub, history, STREAM, "0-0", "r1") as feed:
        chunks = feed.chunks()
        (backlog,) = await take(chunks, 1)
        assert (ids(backlog), backlog.live) == (["1-0", "2-0", "3-0", "4-0", "5-0"], False)
        # 6 and 7 were appended before the reader looked up the stream's end: its first batch comes after 7-0.
        history.events += [event(6), event(7), event(8), event(9)]
        hub.start(STREAM, "7-0")
        hub.dispatch(STREAM, "7-0", (event(8), event(9)))
        hub.dispatch(STREAM, "9-0", (event(10, "run_succeeded"),))
        got = [c async for c in chunks]
    assert [(ids(c), c.live) for c in got] == [(["6-0", "7-0", "8-0", "9-0"], False), (["10-0"], True)]


async def test_a_run_feed_ends_with_its_terminal_event_mid_batch() -> None:
    hub = Hub(queue_size=100)
    async with EventFeed(hub, StoredHistory([]), STREAM, "0-0", "r1") as feed:
        hub.start(STREAM, "0-0")
        hub.dispatch(STREAM, "0-0", (event(1), event(2, "run_failed"), event(3)))
        got = [c async for c in feed.chunks()]
    assert [ids(c) for c in got] == [["1-0", "2-0"]]


async def test_deliveries_are_the_chunks_one_event_at_a_time() -> None:
    hub = Hub(queue_size=100)
    async with EventFeed(hub, StoredHistory([event(1)]), STREAM, "0-0", "r1") as feed:
        hub.start(STREAM, "1-0")
        hub.dispatch(STREAM, "1-0", (event(2), event(3, "run_succeeded")))
        got = [(d.event.id, d.live) async for d in feed.deliveries()]
    assert got == [("1-0", False), ("2-0", True), ("3-0", True)]


class Sink:
    """A connection that takes events at once while ``open``."""

    def __init__(self) -> None:
        self.open = True
        self.written: list[str] = []

    def __call__(self, events: Sequence[WireEvent]) -> bool:
        if self.open:
            self.written += [e.id for e in events]
        return self.open


async def test_a_caught_up_consumer_gets_live_batches_written_at_once() -> None:
    hub, sink = Hub(queue_size=100), Sink()
    async with EventFeed(hub, StoredHistory([]), STREAM, "0-0", "r1") as feed:
        feed.write_directly(sink)
        hub.start(STREAM, "0-0")
        chunks = feed.chunks()
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)  # the consumer now waits, caught up
        hub.dispatch(STREAM, "0-0", (event(1), event(2)))
        hub.dispatch(STREAM, "2-0", (event(3),))
        assert sink.written == ["1-0", "2-0", "3-0"] and not waiting.done()
        # A connection that cannot take bytes now: the batch is queued and comes out of the feed instead.
        sink.open = False
        hub.dispatch(STREAM, "3-0", (event(4),))
        assert ids(await waiting) == ["4-0"]
        sink.open = True
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)
        # The end of the run goes through the feed, which ends after it.
        hub.dispatch(STREAM, "4-0", (event(5), event(6, "run_succeeded")))
        assert ids(await waiting) == ["5-0", "6-0"]
        assert [c async for c in chunks] == []
    assert sink.written == ["1-0", "2-0", "3-0"]


async def test_a_batch_after_a_gap_or_past_the_bound_goes_through_the_feed() -> None:
    history, hub, sink = StoredHistory([event(1), event(2)]), Hub(queue_size=100), Sink()
    async with EventFeed(hub, history, STREAM, "0-0", "r1") as feed:
        feed.write_directly(sink)
        chunks = feed.chunks(max_bytes=len(event(9).ws_frame) * 2)
        assert ids(await anext(chunks)) == ["1-0", "2-0"]
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)
        history.events.append(event(3))
        hub.start(STREAM, "3-0")
        hub.dispatch(STREAM, "3-0", (event(4),))
        assert (ids(await waiting), sink.written) == (["3-0"], [])
        assert ids(await anext(chunks)) == ["4-0"]
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)
        hub.dispatch(STREAM, "4-0", (event(5), event(6), event(7)))
        assert (ids(await waiting), sink.written) == (["5-0", "6-0"], [])
        await chunks.aclose()


async def test_a_failing_sink_hands_its_events_to_the_feed_and_is_not_used_again() -> None:
    hub, calls = Hub(queue_size=100), []

    def broken(events: Sequence[WireEvent]) -> bool:
        calls.append(events)
        raise RuntimeError("connection in a state nobody expected")

    async with EventFeed(hub, StoredHistory([]), STREAM, "0-0", "r1") as feed:
        feed.write_directly(broken)
        hub.start(STREAM, "0-0")
        chunks = feed.chunks()
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)
        hub.dispatch(STREAM, "0-0", (event(1),))
        assert ids(await waiting) == ["1-0"]
        waiting = asyncio.ensure_future(anext(chunks))
        await asyncio.sleep(0)
        hub.dispatch(STREAM, "1-0", (event(2),))
        assert ids(await waiting) == ["2-0"] and len(calls) == 1
        await chunks.aclose()


async def test_events_between_the_backlog_and_the_streams_start_come_out_though_nothing_follows_them() -> None:
    # A run that ends while its first watcher connects: the backlog is read before the reader looks up the
    # stream's end, and the run appends nothing after its terminal event, so no later batch reveals the gap.
    history = StoredHistory([event(1), event(2)])
    hub = Hub(queue_size=100)
    async with EventFeed(hub, history, STREAM, "0-0", "r1") as feed:
        chunks = feed.chunks()
        (backlog,) = await take(chunks, 1)
        assert ids(backlog) == ["1-0", "2-0"]
        history.events += [event(3), event(4, "run_succeeded")]
        hub.start(STREAM, "4-0")
        got = await asyncio.wait_for(take(chunks, 1), 5)
        assert [ids(c) for c in got] == [["3-0", "4-0"]]
        assert [c async for c in chunks] == []


async def test_a_stream_started_where_the_backlog_ended_delivers_nothing_twice() -> None:
    history = StoredHistory([event(1)])
    hub = Hub(queue_size=100)
    async with EventFeed(hub, history, STREAM, "0-0", "r1") as feed:
        delivered: list[list[str]] = []
        feed.write_directly(lambda events: delivered.append([e.id for e in events]) is None)
        chunks = feed.chunks()
        assert ids((await take(chunks, 1))[0]) == ["1-0"]
        waiting = asyncio.create_task(anext(chunks))
        await asyncio.sleep(0)
        hub.start(STREAM, "1-0")
        hub.dispatch(STREAM, "1-0", (event(2, "run_succeeded"),))
        assert ids(await asyncio.wait_for(waiting, 5)) == ["2-0"]
        assert delivered == []
