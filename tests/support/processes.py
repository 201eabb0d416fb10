"""aob services as real subprocesses, for tests that kill them, and one-shot ``aob`` commands."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.deployment import Deployment

AOB = str(Path(sys.executable).parent / "aob")
_REPO = Path(__file__).resolve().parents[2]


async def run_aob(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``aob *argv`` to its end with ``env`` added to this environment; returns its code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from orchestrator.cli import main; sys.exit(main())",
        *argv,
        env={**os.environ, **env},
        cwd=_REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def chaos_env(deployment: Deployment, **extra: str) -> dict[str, str]:
    """The environment of services that share ``deployment``'s Redis prefix and schema, tuned to recover fast."""
    return {
        "AOB_REDIS_URL": deployment.values["redis_url"],
        "AOB_DATABASE_URL": deployment.values["database_url"],
        "AOB_KEY_PREFIX": deployment.key_prefix,
        "AOB_DB_SCHEMA": deployment.values["db_schema"],
        "AOB_VISIBILITY_TIMEOUT_S": "1.5",
        "AOB_MAX_DELIVERIES": "50",
        "AOB_COORDINATOR_HEARTBEAT_S": "0.5",
        "AOB_RECORDER_RECLAIM_IDLE_S": "2",
        "AOB_LOG_JSON": "false",
        **extra,
    }


class ServiceProcess:
    """One ``aob <args>`` child (or ``program <args>``) with its own environment; can be SIGKILLed and started
    again."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, *, program: str = AOB) -> None:
        self.program = program
        self.args = args
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            # Test programs (``python -m tests.support...``) import the test package from the repository root.
            self.proc = subprocess.Popen(
                [self.program, *self.args], env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=_REPO
            )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
