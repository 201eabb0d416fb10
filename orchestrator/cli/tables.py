"""Plain-text tables for list commands: one upper-case header line, columns padded to their widest value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], *, max_width: int = 60) -> None:
    """Print ``columns`` of ``rows``; a missing or null value prints empty, a longer one is cut at ``max_width``."""
    table = [[_cell(row.get(column), max_width) for column in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any, max_width: int) -> str:
    text = "" if value is None else " ".join(str(value).split())
    return text if len(text) <= max_width else text[: max_width - 1] + "…"
