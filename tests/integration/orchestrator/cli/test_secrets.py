"""``aob secrets set|list|delete|rotate|keygen`` against a served API: values go in from stdin or a file, never out."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support.cli import aob

VALUE = "cli-secret-0123456789"


async def test_set_list_rotate_delete(
    api_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(VALUE + "\n"))
    code, out, _ = await aob(capsys, "secrets", "set", "API_KEY")
    assert code == 0 and out.startswith("secret API_KEY set at ")
    value_file = tmp_path / "value"
    value_file.write_text(VALUE + "-file\n")
    code, out, _ = await aob(capsys, "secrets", "set", "FROM_FILE", "--from-file", str(value_file), "-o", "json")
    assert code == 0 and json.loads(out)["name"] == "FROM_FILE"

    code, out, _ = await aob(capsys, "secrets", "list")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "UPDATED_AT", "UPDATED_BY", "CREATED_AT"]
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["API_KEY", "FROM_FILE"]
    assert VALUE not in out

    code, out, _ = await aob(capsys, "secrets", "rotate")
    assert code == 0 and out.strip() == "secrets re-encrypted under the first key: 2"
    code, out, _ = await aob(capsys, "secrets", "delete", "API_KEY")
    assert code == 0 and out.strip() == "secret API_KEY deleted"
    code, _, err = await aob(capsys, "secrets", "delete", "API_KEY")
    assert code == 2 and "404" in err and "secret 'API_KEY' not found" in err


async def test_set_refuses_a_value_too_short_to_redact(
    api_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("abc\n"))
    code, _, err = await aob(capsys, "secrets", "set", "SHORT")
    assert code == 2 and "422" in err and "body.value" in err


async def test_keygen_prints_a_fernet_key(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = await aob(capsys, "secrets", "keygen")
    assert code == 0
    Fernet(out.strip().encode())
