"""execute_pipeline: step validation, each operation, caps."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import ValidationFailed
from workers.agent.program._pipeline import MAX_ROWS, Fetch, FetchStep, execute_pipeline, field_value, parse_steps

ROWS: list[dict[str, Any]] = [
    {"name": "a", "price": 5, "tags": ["x"], "meta": {"rank": 2}},
    {"name": "b", "price": 1, "tags": ["y", "x"], "meta": {"rank": 1}},
    {"name": "c", "price": 9, "tags": [], "meta": {}},
    {"name": "d", "tags": ["z"]},
]


def fetch_returning(body: Any) -> Fetch:
    async def fetch(step: FetchStep) -> Any:
        return body

    return fetch


async def run(*steps: dict[str, Any], body: Any = ROWS) -> list[Any]:
    result = await execute_pipeline([{"type": "fetch", "url": "http://h/rows"}, *steps], fetch_returning(body))
    assert result["count"] == len(result["rows"])
    return list(result["rows"])


@pytest.mark.parametrize(
    ("op", "value", "names"),
    [
        ("==", 5, ["a"]),
        ("!=", 5, ["b", "c"]),
        ("<", 5, ["b"]),
        ("<=", 5, ["a", "b"]),
        (">", 1, ["a", "c"]),
        (">=", 9, ["c"]),
        ("in", [1, 9], ["b", "c"]),
    ],
)
async def test_filter_ops_compare_the_field_and_skip_rows_without_it(op: str, value: Any, names: list[str]) -> None:
    rows = await run({"type": "filter", "field": "price", "op": op, "value": value})
    assert [row["name"] for row in rows] == names


async def test_contains_looks_inside_lists_and_strings_and_mismatched_types_do_not_match() -> None:
    assert [r["name"] for r in await run({"type": "filter", "field": "tags", "op": "contains", "value": "x"})] == [
        "a",
        "b",
    ]
    assert await run({"type": "filter", "field": "price", "op": "<", "value": "7"}) == []


async def test_sort_select_top_k_with_dotted_fields() -> None:
    rows = await run(
        {"type": "sort", "field": "meta.rank", "desc": True},
        {"type": "select", "fields": ["name", "meta.rank"]},
        {"type": "top_k", "k": 3},
    )
    # Rows without the sort field go last in either direction; select fills missing fields with null.
    assert rows == [{"name": "a", "meta.rank": 2}, {"name": "b", "meta.rank": 1}, {"name": "c", "meta.rank": None}]


async def test_sorting_mixed_types_is_an_error_naming_the_step() -> None:
    with pytest.raises(ValidationFailed, match=r"steps\[1\]: cannot sort by 'v': values of mixed types \(int, str\)"):
        await run({"type": "sort", "field": "v"}, body=[{"v": 1}, {"v": "x"}])


async def test_fetch_path_finds_the_rows_inside_an_object() -> None:
    body = {"data": {"items": [{"n": 1}, {"n": 2}]}}
    result = await execute_pipeline(
        [{"type": "fetch", "url": "http://h/", "path": "data.items"}, {"type": "top_k", "k": 1}], fetch_returning(body)
    )
    assert result == {"rows": [{"n": 1}], "count": 1}


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        ({"data": []}, "items", "fetch: path 'items' not found in the response"),
        ({"data": {}}, "data", "fetch: expected a JSON list of rows at path 'data', got dict"),
        ({"rows": []}, None, r"fetch: expected a JSON list of rows \(no path given\), got dict"),
    ],
)
async def test_fetched_bodies_that_hold_no_rows_are_refused(body: Any, path: str | None, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        await execute_pipeline([{"type": "fetch", "url": "http://h/", "path": path}], fetch_returning(body))


async def test_row_and_size_caps() -> None:
    with pytest.raises(ValidationFailed, match=f"fetch: {MAX_ROWS + 1} rows exceed the cap of {MAX_ROWS}"):
        await run(body=[{}] * (MAX_ROWS + 1))
    with pytest.raises(ValidationFailed, match="bytes exceed the cap of 262144; narrow it with select or top_k"):
        await run(body=[{"blob": "x" * 1000}] * 300)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([], "steps\\[0\\]: expected a fetch step first, got no steps"),
        ([{"type": "top_k", "k": 1}], "steps\\[0\\]: expected a fetch step first, got a top_k step"),
        (
            [{"type": "fetch", "url": "u"}, {"type": "fetch", "url": "v"}],
            "steps\\[1\\]: only the first step may fetch",
        ),
        ([{"type": "fetch", "url": "u"}, {"type": "filter", "field": "f", "op": "~", "value": 1}], "steps\\[1\\]\\.op"),
        ([{"type": "fetch", "url": "u"}, {"type": "explode"}], "steps\\[1\\]"),
        ([{"type": "fetch", "url": "u"}, {"type": "top_k", "k": -1}], "steps\\[1\\]\\.k"),
        ("not a list", "steps: "),
    ],
)
def test_invalid_steps_are_named(steps: Any, message: str) -> None:
    with pytest.raises(ValidationFailed, match=message):
        parse_steps(steps)


def test_field_value_walks_objects_and_list_indexes() -> None:
    row = {"a": {"b": [10, {"c": 3}]}}
    assert field_value(row, "a.b.1.c") == 3
    assert field_value(row, "a.b.-2") == 10
    assert field_value(row, "a.x") is not None  # the missing marker, not a value
    assert field_value(row, "a.b.5") is field_value(row, "nope")
