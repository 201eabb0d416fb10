"""How `aob runs watch` / `--follow` describes events."""

from __future__ import annotations

import io

from orchestrator.cli.follow import EventPrinter


def describe(event_type: str, node_id: str | None = None, **data: object) -> str | None:
    event = {"type": event_type, "run_id": "r", "node_id": node_id, "ts": 1, "data": data}
    return EventPrinter(io.StringIO()).describe(event)


def test_batched_log_lines_each_get_a_line() -> None:
    lines = [{"id": "1-1", "kind": "text", "line": "thinking"}, {"id": "1-2", "kind": "log", "line": "{}"}]
    assert describe("log", "agent", attempt=1, lines=lines) == "node agent | thinking\nnode agent | {}"


def test_truncation_is_said() -> None:
    text = describe("log", "agent", attempt=1, truncated=True, dropped_lines=42)
    assert text == "node agent | [log truncated: 42 more lines not stored]"


def test_approval_names_the_commands_that_decide_it() -> None:
    text = describe("approval_requested", "gate", approval_id="ap1", title="Ship?")
    assert text == "node gate awaits approval ap1 'Ship?': aob approve|reject ap1"
