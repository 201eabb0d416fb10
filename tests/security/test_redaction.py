"""Issue 14, secrets: the one redactor every service uses catches the credential shapes the agent log redactor
missed, the encoded forms of known secrets, and URLs in errors lose their credentials and query values."""

from __future__ import annotations

import base64
import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest

from common.logging import JsonFormatter, TextFormatter, redacting
from common.redaction import REDACTED, Redactor, safe_url

SECRET = "s3cr3t-VALUE/with+chars=ok"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgwMbRvI0MBZhpF\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("line", "leaked"),
    [
        ("Authorization: Token 9f8e7d6c5b4a39281706f5e4", "9f8e7d6c5b4a39281706f5e4"),
        ("sent header token 9f8e7d6c5b4a39281706f5e4 upstream", "9f8e7d6c5b4a39281706f5e4"),
        ("authorization: basic dXNlcjpodW50ZXIy", "dXNlcjpodW50ZXIy"),
        ("got basic dXNlcjpodW50ZXIy back", "dXNlcjpodW50ZXIy"),
        (f"jwt {JWT} expired", JWT),
        ("clone with ghp_abcdefghijklmnopqrstuvwxyz0123456789 now", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
        (
            "pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        ),
        ("slack xoxb-1234567890-0987654321-AbCdEfGhIjKl ok", "xoxb-1234567890-0987654321-AbCdEfGhIjKl"),
        ("slack xoxp-1234567890-0987654321-AbCdEfGhIjKl ok", "xoxp-1234567890-0987654321-AbCdEfGhIjKl"),
        ("maps key AIzaSyA-1234567890abcdefghijklmnopqrstu used", "AIzaSyA-1234567890abcdefghijklmnopqrstu"),
        ("oauth ya29.a0AfH6SMBx1234567890abcdefghij used", "ya29.a0AfH6SMBx1234567890abcdefghij"),
        (f"key file:\n{PEM}\nend", "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn"),
        ("truncated -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"),
        ("fetch https://alice:hunter2pass@example.com/x failed", "hunter2pass"),
        ("config secret=opensesame123 loaded", "opensesame123"),
        ("config token=opensesame123 loaded", "opensesame123"),
        ("config password=opensesame123 loaded", "opensesame123"),
        ("GET /x?api_key=opensesame123&q=1", "opensesame123"),
        ('{"secret": "opensesame123", "n": 1}', "opensesame123"),
    ],
)
def test_credential_shapes_are_redacted(line: str, leaked: str) -> None:
    redacted = Redactor().redact(line)
    assert leaked not in redacted
    assert REDACTED in redacted


@pytest.mark.parametrize(
    "line",
    [
        "The token budget is 20000 tokens; basic understanding of the task.",
        "a basic configuration token handling step",
        "max_tokens=512 prompt_tokens=20",
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709 and a task id",
        "see https://example.com/path?page=2 for more",
    ],
)
def test_ordinary_text_is_left_alone(line: str) -> None:
    assert Redactor([SECRET]).redact(line) == line


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        quote(SECRET, safe=""),
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(SECRET, safe="")),
        quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode(),
        base64.b64encode(f"user:{SECRET}".encode()).decode(),
        base64.b64encode(f"xy:{SECRET}:z".encode()).decode(),
    ],
)
def test_encoded_forms_of_known_secrets_are_redacted(form: str) -> None:
    redacted = Redactor([SECRET]).redact_values(f"prefix {form} suffix")
    assert SECRET not in redacted
    assert form not in redacted
    # No long enough remainder of the encoding survives either.
    assert redacted.startswith("prefix ") and redacted.endswith(" suffix")
    assert len(redacted) <= len("prefix  suffix") + len(REDACTED) + 4


def test_redact_data_walks_json_values() -> None:
    data = {"headers": {"x-echo": f"Bearer {SECRET}"}, "body": [SECRET, 1, None], SECRET: True}
    redacted = Redactor([SECRET]).redact_data(data)
    assert SECRET not in json.dumps(redacted)
    assert redacted["body"][1:] == [1, None]


@pytest.mark.parametrize(
    "url",
    [
        "https://alice:pa55word@example.com/path?api_key=k3y-value&x=1#frag-k3y-value",
        "http://alice:pa55word@[::1/?api_key=k3y-value",
        "ftp://alice:pa55word@host/x?api_key=k3y-value",
    ],
)
def test_safe_url_drops_credentials_and_query_values(url: str) -> None:
    shown = safe_url(url)
    assert "pa55word" not in shown
    assert "k3y-value" not in shown
    assert "alice" not in shown


def test_safe_url_keeps_what_helps_to_debug() -> None:
    assert safe_url("https://u:p@example.com:8443/a/b?api_key=x&page=2") == (
        f"https://example.com:8443/a/b?api_key={REDACTED}&page={REDACTED}"
    )


@pytest.mark.parametrize("formatter", [JsonFormatter(), TextFormatter()])
def test_process_logs_are_redacted(formatter: logging.Formatter) -> None:
    record = logging.LogRecord(
        "aob.test",
        logging.INFO,
        __file__,
        1,
        "calling with Authorization: Token %s and %s",
        ("abc123def456", SECRET),
        None,
    )
    plain = formatter.format(record)
    assert "abc123def456" not in plain
    with redacting(Redactor([SECRET])):
        assert SECRET not in formatter.format(record)
    assert SECRET in formatter.format(record)
