"""A stand-in agent program speaking the stdout protocol, for tests of the agent worker (stdlib only: it also runs
in the test container). Its job's ``prompt`` is a JSON script:

``{"lines": N, "text": "...", "bulk_bytes": B, "echo_secrets": bool, "gate": PATH, "stderr": "...",
"result": {...} | null, "exit": code, "hang": bool, "sleep_s": S, "report_api": bool}``; with ``report_api`` the
default result's output says whether the job carried an API token.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> None:
    job = json.loads(sys.stdin.read())
    script = json.loads(job["prompt"])
    out = sys.stdout

    def emit(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    emit(json.dumps({"ts": "2026-01-01T00:00:00Z", "level": "info", "msg": "fake agent up", "node": job["node_id"]}))
    for i in range(script.get("lines", 0)):
        emit(f"{script.get('text', 'model line')} {i}")
    if script.get("echo_secrets"):
        emit(f"the provider key is {job['llm']['api_key']} ok")
        if job.get("api"):
            emit(f"Authorization: Bearer {job['api']['token']}")
        emit(json.dumps({"ts": "t", "level": "debug", "msg": "call", "headers": {"x-api-key": job["llm"]["api_key"]}}))
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
    output = {"api": bool(job.get("api"))} if script.get("report_api") else {"ok": True}
    result = script.get("result", {"status": "succeeded", "output": output})
    if result is not None:
        result.setdefault("usage", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})
        result.setdefault("steps", 1)
        emit("@@AOB_RESULT@@ " + json.dumps(result))
    sys.exit(script.get("exit", 0 if (result or {}).get("status") == "succeeded" else 1))


if __name__ == "__main__":
    main()
