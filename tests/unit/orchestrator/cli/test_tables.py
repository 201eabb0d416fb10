"""``print_table``: an upper-case header, padded columns, empty nulls, long values cut on one line."""

from __future__ import annotations

import pytest

from orchestrator.cli.tables import print_table


def test_columns_are_padded_and_long_values_cut(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": "a", "reason": "x" * 10}, {"id": "bbb", "reason": "two\nlines", "extra": 1}, {"id": None}]
    print_table(rows, ("id", "reason"), max_width=9)
    assert capsys.readouterr().out.splitlines() == [
        "ID   REASON",
        "a    xxxxxxxx…",
        "bbb  two lines",
        "",
    ]
