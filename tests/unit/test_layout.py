"""The layout rules of docs/architecture.md that import-linter does not express: module size and privacy."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("common", "coordinator", "workers", "fanout", "orchestrator", "devstack")
MAX_LINES = 400


def _python_files(*roots: str) -> list[Path]:
    return sorted(path for root in roots for path in (REPO / root).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_no_module_is_over_400_lines() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for path in _python_files(*PACKAGES, "tests")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def test_no_private_module_is_imported_from_outside_its_package() -> None:
    offences = []
    for path in _python_files(*PACKAGES):
        importer = _module_name(path)
        for imported in _imported_modules(path):
            parts = imported.split(".")
            for depth, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:depth])
                    if not (importer == owner or importer.startswith(owner + ".")):
                        offences.append(f"{importer} imports {imported}")
                    break
    assert offences == []
