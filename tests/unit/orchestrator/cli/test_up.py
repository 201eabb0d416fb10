"""``aob up``'s secrets key: kept beside embedded servers' data across restarts, or for one session."""

from __future__ import annotations

import stat
from pathlib import Path

from common.secrets import Keyring
from devstack.supervisor import UpSettings
from orchestrator.cli.up import _dev_secrets_key, _point_agents_at_api


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


def test_agents_patch_through_the_api_this_stack_serves(tmp_path: Path) -> None:
    # A stack on another port than 8080 left agents posting their patches to the default URL (api_unreachable).
    settings = UpSettings(api_port=18123, data_dir=tmp_path)
    env: dict[str, str] = {}
    _point_agents_at_api(env, settings)
    assert env["AOB_API_URL"] == "http://127.0.0.1:18123"
    wildcard = UpSettings(api_host="0.0.0.0", api_port=9000, data_dir=tmp_path)
    _point_agents_at_api(env := {}, wildcard)
    assert env["AOB_API_URL"] == "http://127.0.0.1:9000"
    configured = {"AOB_API_URL": "https://api.example.com"}
    _point_agents_at_api(configured, settings)
    assert configured["AOB_API_URL"] == "https://api.example.com"
