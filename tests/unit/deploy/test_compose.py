"""docker-compose.yml: its aob services run the mounted source, where migrations and the built UI are found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common.db import MIGRATIONS_DIR
from common.settings import DEFAULT_UI_DIST_DIR

REPO = Path(__file__).resolve().parents[3]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return loaded


def test_aob_services_import_the_mounted_source() -> None:
    services = _compose()["services"]
    aob = {name: s for name, s in services.items() if s.get("command", [""])[0] == "aob"}
    assert {"migrate", "orchestrator", "coordinator", "fanout"} <= set(aob)
    for name, service in aob.items():
        mount = next(v.split(":")[1] for v in service["volumes"] if v.startswith(".:"))
        # A non-editable install puts the packages in the venv, where neither migrations/ nor the UI build is.
        assert service["environment"].get("PYTHONPATH") == mount, name
        assert service["working_dir"] == mount, name
    # Both are found next to the packages, which is why the source must be what is imported.
    assert MIGRATIONS_DIR.parent == DEFAULT_UI_DIST_DIR.parents[2] == REPO
