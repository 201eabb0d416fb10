"""Splitting an agent's output into log lines."""

from __future__ import annotations

from workers.agent._lines import LineSplitter


def test_line_splitter_cuts_long_lines_and_keeps_partial_ones() -> None:
    splitter = LineSplitter(max_line_bytes=256)
    assert splitter.feed(b"one\r\ntw") == ["one"]
    assert splitter.feed(b"o\n" + b"x" * 600) == ["two", "x" * 256, "x" * 256]
    assert splitter.feed(b"\xc3") == []
    assert splitter.end() == ["x" * 88 + "\ufffd"]
