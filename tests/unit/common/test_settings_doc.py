"""docs/settings.md is the rendering of the settings classes as they are now."""

from __future__ import annotations

from pathlib import Path

from tests.support.settings_doc import render

DOC = Path(__file__).resolve().parents[3] / "docs" / "settings.md"


def test_settings_doc_is_current() -> None:
    assert DOC.read_text() == render(), (
        "docs/settings.md is stale: run `python -m tests.support.settings_doc > docs/settings.md`"
    )
