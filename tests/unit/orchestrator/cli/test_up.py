"""``aob up``'s secrets key: kept beside embedded servers' data across restarts, or for one session."""

from __future__ import annotations

import stat
from pathlib import Path

from common.secrets import Keyring
from orchestrator.cli.up import _dev_secrets_key


def test_the_dev_key_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    key, origin = _dev_secrets_key(tmp_path / "data")
    assert origin.startswith("generated, kept in")
    path = tmp_path / "data" / "secrets.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert _dev_secrets_key(tmp_path / "data") == (key, f"from {path}")
    assert Keyring([key]).configured


def test_without_a_data_dir_the_key_lasts_one_session() -> None:
    key, origin = _dev_secrets_key(None)
    assert "this session only" in origin and key != _dev_secrets_key(None)[0]
