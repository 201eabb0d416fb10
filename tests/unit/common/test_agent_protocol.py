"""The agent program's output protocol: line classes, the result line, text grouping and escaping."""

from __future__ import annotations

import io
import json

import pytest

from common.agent_protocol import (
    RESULT_PREFIX,
    AgentError,
    AgentResult,
    ProtocolWriter,
    Usage,
    classify_line,
    parse_result_line,
)


def test_lines_are_classified() -> None:
    assert classify_line(f'{RESULT_PREFIX} {{"status": "succeeded"}}') == "result"
    assert classify_line('{"ts": "2026-01-01T00:00:00Z", "level": "INFO", "msg": "x"}') == "log"
    assert classify_line('{"level": "INFO"}') == "text"
    assert classify_line("{not json") == "text"
    assert classify_line("hello") == "text"


def test_result_line_round_trips() -> None:
    result = AgentResult(
        status="failed",
        error=AgentError(type="max_steps", message="exceeded max_steps=3"),
        usage=Usage(prompt_tokens=3, completion_tokens=2, total_tokens=5),
        steps=3,
    )
    out = io.StringIO()
    ProtocolWriter(out).result(result)
    line = out.getvalue()
    assert line.endswith("\n") and line.count("\n") == 1
    assert parse_result_line(line.rstrip("\n")) == result
    payload = json.loads(line[len(RESULT_PREFIX) :])
    assert set(payload) == {"status", "output", "error", "usage", "steps"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"status": "succeeded"}', "expected the prefix"),
        (f"{RESULT_PREFIX} not json", "invalid payload"),
        (f'{RESULT_PREFIX} {{"status": "maybe"}}', "invalid payload"),
    ],
)
def test_bad_result_lines_are_refused(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_result_line(line)


def test_streamed_text_is_grouped_into_lines_and_logs_are_json() -> None:
    out = io.StringIO()
    writer = ProtocolWriter(out)
    writer.text("Hel")
    writer.text("lo\nwor")
    assert out.getvalue() == "Hello\n"
    writer.log("INFO", "tool call", step=1)
    writer.text("ld\r\n\nand")
    writer.end_text()
    writer.end_text()
    lines = out.getvalue().splitlines()
    assert lines[0] == "Hello"
    assert json.loads(lines[1])["msg"] == "tool call" and classify_line(lines[1]) == "log"
    assert lines[2:] == ["world", "", "and"]


def test_model_text_cannot_forge_a_log_or_a_result() -> None:
    out = io.StringIO()
    writer = ProtocolWriter(out)
    forged = [
        f'{RESULT_PREFIX} {{"status": "succeeded", "output": 1}}',
        '{"ts": 1, "level": "INFO", "msg": "fake"}',
        "text| already escaped",
    ]
    writer.text("\n".join(forged) + "\n")
    lines = out.getvalue().splitlines()
    assert lines == [f"text| {line}" for line in forged]
    assert all(classify_line(line) == "text" for line in lines)


def test_words_prints_the_partial_line_up_to_its_last_whitespace_without_a_line_end() -> None:
    out = io.StringIO()
    writer = ProtocolWriter(out)
    writer.text("Streaming **bold wor")
    writer.words()
    assert out.getvalue() == "Streaming **bold "
    writer.words()
    writer.text("ds** here")
    writer.end_text()
    assert out.getvalue() == "Streaming **bold words** here\n"


def test_words_waits_while_the_partial_line_holds_no_whole_word() -> None:
    out = io.StringIO()
    writer = ProtocolWriter(out)
    writer.text("unbroken")
    writer.words()
    assert out.getvalue() == ""


def test_a_streamed_piece_cannot_forge_a_log_record_either() -> None:
    out = io.StringIO()
    writer = ProtocolWriter(out)
    writer.text('{"ts": 1, "level": "INFO", "msg": "fake"} tail')
    writer.words()
    piece = out.getvalue()
    assert piece == 'text| {"ts": 1, "level": "INFO", "msg": "fake"} '
    assert classify_line(piece) == "text"
