"""The order runs are rebuilt in: every child before its parent."""

from __future__ import annotations

from common.runs.reconcile import children_first


def test_children_come_before_their_parents() -> None:
    runs = [("a", None), ("a-0", "a"), ("b", None), ("a-0-1", "a-0"), ("c-0", "c"), ("loop", "loop")]

    ordered = [run_id for run_id, _ in children_first(runs)]

    assert ordered.index("a-0-1") < ordered.index("a-0") < ordered.index("a")
    # A parent Redis still holds (c) or a cycle in bad data (loop) does not hide a run.
    assert sorted(ordered) == sorted(run_id for run_id, _ in runs)
