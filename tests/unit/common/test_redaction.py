"""The shared redactor on agent log lines: known secret values and credential-looking strings go, other text stays."""

from __future__ import annotations

import json

import pytest

from common.redaction import Redactor

SECRET = 'p@ss"word\\with-quote'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "Authorization: Bearer [REDACTED]"),
        ("authorization: bearer abcdefgh12345", "authorization: bearer [REDACTED]"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: Basic [REDACTED]"),
        ("key sk-proj-AbCdEf0123456789xyzXYZ done", "key [REDACTED] done"),
        ("anthropic sk-ant-api03-abcdefghijklmnop", "anthropic [REDACTED]"),
        ("id AKIAIOSFODNN7EXAMPLE here", "id [REDACTED] here"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "aws_secret_access_key = [REDACTED]",
        ),
        ('{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}', '{"SecretAccessKey": "[REDACTED]"}'),
        ("GET /x?api_key=abc123&q=1", "GET /x?api_key=[REDACTED]&q=1"),
        ('{"x-api-key": "zzzzzz", "n": 1}', '{"x-api-key": "[REDACTED]", "n": 1}'),
        ("password: hunter2", "password: [REDACTED]"),
        ("token aob_agent_abcdefghijklmnopqrstuvwxyz", "token [REDACTED]"),
        ("the llm-key-123456 leaked", "the [REDACTED] leaked"),
    ],
)
def test_credentials_are_redacted(line: str, expected: str) -> None:
    assert Redactor(["llm-key-123456"]).redact(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "The token budget is 20000 tokens; basic understanding of the task.",
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 and a task id",
        '{"ts": "2026-01-01T00:00:00Z", "level": "info", "msg": "step 3: calling http_request"}',
        "Bearer",
    ],
)
def test_ordinary_text_is_left_alone(line: str) -> None:
    assert Redactor(["llm-key-123456"]).redact(line) == line


def test_configured_values_are_redacted_also_when_json_escaped() -> None:
    redactor = Redactor([SECRET, "abc"])
    assert redactor.redact(f"raw {SECRET} end") == "raw [REDACTED] end"
    assert SECRET not in redactor.redact(json.dumps({"msg": SECRET}))
    assert json.dumps(SECRET)[1:-1] not in redactor.redact(json.dumps({"msg": SECRET}))
    # Values too short to be secrets would blank ordinary words.
    assert redactor.redact("abc") == "abc"


def test_redact_values_keeps_json_data_parseable() -> None:
    redactor = Redactor(["llm-key-123456"])
    raw = json.dumps({"output": {"token": "visible-data", "note": "llm-key-123456"}})
    assert json.loads(redactor.redact_values(raw)) == {"output": {"token": "visible-data", "note": "[REDACTED]"}}


@pytest.mark.parametrize(
    "text",
    ["curl -H 'Authorization: ", "send Bearer ", "the token ", 'config {"password": ', "Authorization: Basic "],
)
def test_a_piece_ending_where_a_credential_starts_may_continue(text: str) -> None:
    assert Redactor().may_continue(text)


def test_a_piece_ending_inside_a_known_secret_with_spaces_may_continue() -> None:
    redactor = Redactor(["correct horse battery staple"])
    assert redactor.may_continue("the phrase is correct horse ")
    assert not redactor.may_continue("the horse is fast ")


def test_ordinary_prose_does_not_continue() -> None:
    assert not Redactor().may_continue("Reading **the context** first, then ")
