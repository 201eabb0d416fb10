"""Settings fail at start with one line naming the variable; a service command says so and exits non-zero. Each
process has one shallow settings class, and every variable docs/settings.md lists for a process reaches it."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from common.errors import ConfigError
from common.settings import (
    ApiSettings,
    CommonSettings,
    CoordinatorSettings,
    FanoutSettings,
    WorkerSettings,
    load_settings,
)
from devstack.supervisor import UpSettings
from orchestrator.cli import main, services, up
from tests.support.settings_doc import PROCESSES

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "settings.md"
PACKAGES = ("common", "coordinator", "workers", "fanout", "orchestrator", "devstack")
# The command line starting each process whose section docs/settings.md has (one node type stands for all).
COMMANDS = {
    "aob orchestrator": ["orchestrator"],
    "aob coordinator": ["coordinator"],
    "aob worker <type>": ["worker", "agent"],
    "aob fanout": ["fanout"],
    "aob up": ["up"],
}
# Values that only some strings are (patterns, literals, a service list); other fields get one from their default.
SAMPLES = {
    "redis_url": "redis://sample:6379/3",
    "database_url": "postgresql://sample/aob",
    "db_schema": "sample_schema",
    "log_level": "ERROR",
    "ui_fanout_url": "wss://ui.example",
    "agent_runtime": "docker",
    "up_services": "coordinator",
}
FIELDS: dict[str, FieldInfo] = {name: f for cls in PROCESSES for name, f in cls.model_fields.items()}


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


def test_one_settings_class_per_process_at_most_two_levels_below_base_settings() -> None:
    for package in PACKAGES:
        root = importlib.import_module(package)
        for module in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not module.name.endswith("__main__"):  # a program's __main__ would run it
                importlib.import_module(module.name)
    ours = {cls for cls in _subclasses(BaseSettings) if cls.__module__.split(".")[0] in PACKAGES}
    assert ours == {CommonSettings, ApiSettings, CoordinatorSettings, WorkerSettings, FanoutSettings, UpSettings}
    depth = {cls.__name__: sum(issubclass(c, BaseSettings) for c in cls.__mro__) - 1 for cls in ours}
    assert max(depth.values()) <= 2, depth


def _subclasses(cls: type) -> set[type]:
    direct: set[type] = set(cls.__subclasses__())
    return direct.union(*(_subclasses(sub) for sub in direct))


def _documented() -> dict[str, list[str]]:
    """The ``AOB_*`` variables docs/settings.md lists per process section, each with those of "Every process"."""
    sections: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            section = line.removeprefix("## ").split("`")[1] if "`" in line else line.removeprefix("## ")
            sections[section] = []
        elif line.startswith("| `AOB_"):
            sections[section].append(line.split("`")[1])
    every = sections.pop("Every process")
    return {section: every + names for section, names in sections.items()}


def _sample(name: str, field: FieldInfo) -> tuple[str, Any]:
    """A valid value for ``name`` other than its default: as the environment spells it, and as it is read."""
    default = field.default
    if name in SAMPLES:
        return SAMPLES[name], SAMPLES[name]
    if isinstance(default, bool):
        return str(not default).lower(), not default
    if isinstance(default, int | float):
        highest = next((bound.le for bound in field.metadata if getattr(bound, "le", None) is not None), None)
        value = default + 1 if highest is None or default + 1 <= highest else (default + highest) / 2
        return str(value), value
    if isinstance(default, Path):
        return "/srv/aob-sample", Path("/srv/aob-sample")
    if isinstance(default, SecretStr):
        return "sample-secret", "sample-secret"
    if isinstance(default, tuple | frozenset):
        return "one, two", type(default)(("one", "two"))
    return f"sample-{name}", f"sample-{name}"


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return tuple(_plain(item) for item in value)
    return value


def test_the_doc_has_a_section_per_process() -> None:
    assert set(_documented()) == set(COMMANDS)


@pytest.mark.parametrize("section", list(COMMANDS))
def test_every_documented_variable_reaches_its_process(section: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = {}
    for variable in _documented()[section]:
        name = variable.removeprefix("AOB_").lower()
        raw, expected[name] = _sample(name, FIELDS[name])
        monkeypatch.setenv(variable, raw)
    received: list[Any] = []

    async def entry(*args: Any) -> None:  # a service's entry point: its settings come last
        received.append(args[-1])

    async def run_up(settings: UpSettings, *args: Any) -> int:
        received.append(settings)
        return 0

    monkeypatch.setattr(services, "_entry_point", lambda *args: entry)
    monkeypatch.setattr(up, "_up", run_up)
    for module in (services, up):  # this test process keeps its own logging
        monkeypatch.setattr(module, "configure_logging", lambda *args: None)
    assert main(COMMANDS[section]) == 0
    [settings] = received
    assert {name: _plain(getattr(settings, name)) for name in expected} == expected
