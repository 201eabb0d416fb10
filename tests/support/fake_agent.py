"""A stand-in agent program speaking the stdout protocol, for tests of the agent worker (stdlib only: it also runs
in the test container). Its job's ``prompt`` is a JSON script:

``{"lines": N, "text": "...", "bulk_bytes": B, "gate": PATH, "stderr": "...", "echo_secrets": bool | VALUE,
"result": {...} | null, "exit": code, "hang": bool, "sleep_s": S, "probe": {"tcp": [host, port]},
"report_patch": bool}``

``probe`` looks for ambient authority and makes it the output: the parent's environment through ``/proc``, its
own environment and user, the job's fields, a TCP connection, the network interfaces, a write to ``/``. With
``report_patch`` the default result's output says whether the worker holds a patch token for the job.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any


def _attempt(action: Any) -> Any:
    try:
        return {"ok": action()}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def _effective_capabilities() -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return line.split()[1]
    return "unknown"


def _interfaces() -> list[str]:
    # /proc/self/net follows the process's network namespace (/sys/class/net follows the mount's).
    lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    return sorted(line.split(":")[0].strip() for line in lines)


def probe(job: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """What the program can reach beyond its job: each attempt's result or the error that stopped it."""

    def tcp() -> str:
        with socket.create_connection(tuple(target["tcp"]), timeout=2):
            return "connected"

    def write_root() -> str:
        Path("/aob-probe").write_text("x")
        return "written"

    return {
        "parent_environ": _attempt(
            lambda: Path(f"/proc/{os.getppid()}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
        ),
        "environ": dict(os.environ),
        "uid": os.getuid(),
        "capabilities": _attempt(lambda: _effective_capabilities()),
        "job_fields": sorted(job),
        "job": json.dumps(job),
        "tcp": _attempt(tcp) if target.get("tcp") else None,
        "interfaces": _attempt(_interfaces),
        "write_root": _attempt(write_root),
    }


def main() -> None:
    # The job is the first line; the worker keeps stdin open for call replies.
    job = json.loads(sys.stdin.readline())
    script = json.loads(job["prompt"])
    out = sys.stdout

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    emit(json.dumps({"ts": "2026-01-01T00:00:00Z", "level": "info", "msg": "fake agent up", "node": job["node_id"]}))
    for i in range(script.get("lines", 0)):
        emit(f"{script.get('text', 'model line')} {i}")
    if script.get("echo_secrets"):
        # The job holds no key any more: the script names the value a leaking program would have printed.
        key = script["echo_secrets"] if isinstance(script["echo_secrets"], str) else "no-key"
        emit(f"the provider key is {key} ok")
        emit(json.dumps({"ts": "t", "level": "debug", "msg": "call", "headers": {"x-api-key": key}}))
        emit("leaked sk-proj-abcdefghijklmnopqrstuvwx and AKIAABCDEFGHIJKLMNOP")
        emit("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYab and password: hunter22")
    bulk = script.get("bulk_bytes", 0)
    if bulk:
        block = "".join(f"bulk line {i:08d} " + "x" * 80 + "\n" for i in range(1000))
        written = 0
        while written < bulk:
            out.write(block)
            written += len(block)
        out.flush()
    if script.get("stderr"):
        sys.stderr.write(script["stderr"] + "\n")
        sys.stderr.flush()
    gate = script.get("gate")
    if gate:
        while not Path(gate).exists():
            time.sleep(0.01)
    if script.get("sleep_s"):
        time.sleep(script["sleep_s"])
    if script.get("hang"):
        while True:
            time.sleep(1)
    if script.get("kill_self"):
        os.kill(os.getpid(), signal.SIGKILL)
    output = {"patch": bool(job.get("patch"))} if script.get("report_patch") else {"ok": True}
    result = script.get("result", {"status": "succeeded", "output": output})
    if script.get("probe") is not None:
        result = {"status": "succeeded", "output": probe(job, script["probe"])}
    if result is not None:
        result.setdefault("usage", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        result.setdefault("steps", 1)
        emit("@@AOB_RESULT@@ " + json.dumps(result))
    sys.exit(script.get("exit", 0 if (result or {}).get("status") == "succeeded" else 1))


if __name__ == "__main__":
    main()
