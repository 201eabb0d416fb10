"""What the input guard refuses (and names), and what it lets through untouched."""

from __future__ import annotations

import json

import pytest

from orchestrator._input_guard import NUMBER_MESSAGE, TEXT_MESSAGE, body_problems, url_problems


def test_nul_and_unpaired_surrogates_are_named_by_path() -> None:
    body = json.dumps({"name": "a\x00b", "inputs": {"list": ["ok", "\ud800"], "k\x00": 1}}).encode()
    assert body_problems(body) == [
        {"path": "body.inputs.'k\\x00'", "message": "key: " + TEXT_MESSAGE},
        {"path": "body.inputs.list.1", "message": TEXT_MESSAGE},
        {"path": "body.name", "message": TEXT_MESSAGE},
    ]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-2E+999"])
def test_numbers_json_cannot_hold_are_named(literal: str) -> None:
    assert body_problems(f'{{"a": [{literal}]}}'.encode()) == [{"path": "body.a.0", "message": NUMBER_MESSAGE}]


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"emoji": "\U0001f600", "escaped": "\\u0000 as text", "number": 1e300, "word": "NaN"}).encode(),
        b'{"not json',
        b"[" * 100_000,
        b"",
    ],
)
def test_storable_or_unparsable_bodies_pass(body: bytes) -> None:
    assert body_problems(body) == []


def test_a_bad_key_is_escaped_in_every_path_under_it() -> None:
    body = json.dumps({"\ud800": {"x": "\x00"}}).encode()
    assert body_problems(body) == [
        {"path": "body.'\\ud800'", "message": "key: " + TEXT_MESSAGE},
        {"path": "body.'\\ud800'.x", "message": TEXT_MESSAGE},
    ]
    json.dumps(body_problems(body)).encode()


def test_a_deep_document_is_walked_without_recursion() -> None:
    document: object = "\x00"
    for _ in range(900):
        document = [document]
    assert body_problems(json.dumps(document).encode()) == [{"path": "body" + ".0" * 900, "message": TEXT_MESSAGE}]


def test_nul_in_the_url_is_named() -> None:
    scope = {"path": "/api/v1/workflows/a\x00", "query_string": b"after=%00&limit=5"}
    assert [p["path"] for p in url_problems(scope)] == ["path", "query.after"]
    assert url_problems({"path": "/api/v1/runs", "query_string": b"status=running"}) == []
