"""``aob runs watch`` / ``--follow``: print a run's events as they happen, over the API's SSE stream.

SSE rather than the WebSocket fanout because the API URL is all the CLI knows; ``Last-Event-ID`` makes
reconnecting lossless, so a dropped connection or a restarted API is invisible apart from a short pause.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any, TextIO

import httpx

from common.errors import AobError
from orchestrator.cli.client import ClientConfig

TERMINAL = {"run_succeeded", "run_failed", "run_cancelled", "run_timed_out"}
# The server sends a heartbeat every 15 s, so a read this long without a byte means the connection is dead.
_READ_TIMEOUT_S = 45.0
_MAX_BACKOFF_S = 5.0
_MAX_FAILURES = 8


def follow_run(
    config: ClientConfig, run_id: str, *, out: TextIO | None = None, transport: httpx.BaseTransport | None = None
) -> int:
    """Print each event of ``run_id`` until it ends, reconnecting as needed; 0 if it succeeded, else 1.

    Raises ``AobError`` when the API refuses (unknown run, bad key) or stays unreachable.
    """
    printer = EventPrinter(out or sys.stdout)
    timeout = httpx.Timeout(10.0, read=_READ_TIMEOUT_S)
    headers = {"Authorization": f"Bearer {config.key}", "Accept": "text/event-stream"}
    failures = 0
    with httpx.Client(base_url=config.url, headers=headers, timeout=timeout, transport=transport) as http:
        while printer.outcome is None:
            before = printer.last_id
            try:
                _stream_once(http, run_id, printer)
            except httpx.TransportError as exc:
                if printer.last_id == before:
                    failures += 1
                    if failures >= _MAX_FAILURES:
                        raise AobError(f"{config.url}: lost the event stream of run {run_id}: {exc}") from exc
                    time.sleep(min(_MAX_BACKOFF_S, 0.2 * 2**failures))
                    continue
            if printer.last_id != before:
                failures = 0
    return 0 if printer.outcome == "run_succeeded" else 1


def _stream_once(http: httpx.Client, run_id: str, printer: EventPrinter) -> None:
    headers = {"Last-Event-ID": printer.last_id} if printer.last_id else {}
    with http.stream("GET", f"/api/v1/runs/{run_id}/events", headers=headers) as response:
        if response.status_code >= 400:
            response.read()
            raise AobError(_refusal(response))
        for line in response.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event.get("type") == "resync":
                    return
                printer.show(event)


def _refusal(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text[:200] or response.reason_phrase}"


class EventPrinter:
    """Turns events into one readable line each; remembers the resume cursor and the run's outcome."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.last_id = ""
        self.outcome: str | None = None
        self._started_ts: int | None = None

    def show(self, event: dict[str, Any]) -> None:
        """Print ``event`` (unless it is routine noise) and advance the cursor."""
        self.last_id = str(event.get("id", self.last_id))
        kind = str(event.get("type", ""))
        if kind == "run_started":
            self._started_ts = event.get("ts")
        if kind in TERMINAL:
            self.outcome = kind
        line = self.describe(event)
        if line is not None:
            stamp = datetime.fromtimestamp(event.get("ts", 0) / 1000).strftime("%H:%M:%S.%f")[:-3]
            print(f"{stamp}  {line}", file=self.out, flush=True)

    def describe(self, event: dict[str, Any]) -> str | None:
        """The line for ``event``; None for events not worth a line (a node being queued)."""
        kind = str(event.get("type", ""))
        data: dict[str, Any] = event.get("data") or {}
        node = f"node {event.get('node_id')}"
        if kind == "run_started":
            return f"run started: {data.get('workflow_name', '')} v{data.get('version', '?')}".rstrip()
        if kind == "node_queued":
            return None
        if kind == "node_started":
            return f"{node} started (attempt {data.get('attempt', 1)})"
        if kind == "node_succeeded":
            return f"{node} succeeded{_timing(data)}"
        if kind == "node_failed":
            return f"{node} failed (attempt {data.get('attempt', 1)}): {_error(data.get('error'))}"
        if kind == "node_retrying":
            return f"{node} attempt {data.get('attempt', '?')} failed, retrying: {_error(data.get('error'))}"
        if kind == "node_skipped":
            return f"{node} skipped ({data.get('reason', 'not taken')})"
        if kind == "approval_requested":
            title = f" {data['title']!r}" if data.get("title") else ""
            approval = data.get("approval_id")
            return f"{node} awaits approval {approval}{title}: aob approve|reject {approval}"
        if kind == "approval_decided":
            return f"{node} approval {data.get('approval_id', '')} decided: {data.get('decision', data)}"
        if kind == "workflow_patched":
            added = ", ".join(data.get("added_nodes") or []) or "no nodes"
            return (
                f"workflow patched v{data.get('from_version')} -> v{data.get('to_version')}"
                f" by {data.get('author', '?')}: added {added}"
            )
        if kind == "log":
            if data.get("truncated"):
                return f"{node} | [log truncated: {data.get('dropped_lines', 0)} more lines not stored]"
            lines = [item.get("line", "") for item in data.get("lines", [])]
            return "\n".join(f"{node} | {line}" for line in lines)
        if kind in TERMINAL:
            took = ""
            if self._started_ts is not None and event.get("ts"):
                took = f" in {(event['ts'] - self._started_ts) / 1000:.2f}s"
            error = f": {_error(data['error'])}" if data.get("error") else ""
            return f"run {kind.removeprefix('run_')}{took}{error}"
        return f"{kind} {event.get('node_id') or ''} {json.dumps(data)}".replace("  ", " ")


def _timing(data: dict[str, Any]) -> str:
    parts = []
    if data.get("exec_ms") is not None:
        parts.append(f"in {data['exec_ms']:.1f} ms")
    if data.get("queue_ms") is not None:
        parts.append(f"(queued {data['queue_ms']:.1f} ms)")
    if data.get("branch"):
        parts.append(f"-> {data['branch']}")
    return " " + " ".join(parts) if parts else ""


def _error(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('message', '')}"
    return str(error)
