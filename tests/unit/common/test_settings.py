"""Settings fail at start with one line naming the variable; a service command says so and exits non-zero."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.settings import ApiSettings, WorkerSettings, load_settings
from orchestrator.cli import main


def test_malformed_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOB_WORKER_CONCURRENCY", "lots")
    with pytest.raises(ConfigError) as raised:
        load_settings(WorkerSettings)
    assert raised.value.message.startswith("AOB_WORKER_CONCURRENCY: ")
    assert "'lots'" in raised.value.message
    assert "\n" not in raised.value.message


def test_out_of_range_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AOB_API_PORT", "70000")
    with pytest.raises(ConfigError, match=r"^AOB_API_PORT: .*70000"):
        load_settings(ApiSettings)


def test_defaults_need_no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AOB_REDIS_URL", "AOB_DATABASE_URL", "AOB_KEY_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(ApiSettings)
    assert settings.redis_url is None and settings.api_port == 8080 and settings.key_prefix == ""


def test_service_command_without_urls_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AOB_REDIS_URL", raising=False)
    assert main(["coordinator"]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "AOB_REDIS_URL" in err
