"""Running the ``aob`` CLI in a test: its exit code and what it printed."""

from __future__ import annotations

import asyncio

import pytest

from orchestrator.cli import main


async def aob(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``aob *argv`` in a thread (it is synchronous); ``(exit code, stdout, stderr)``."""
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err
