"""User commands that talk to the API: login, whoami, workflows, runs, blobs."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from common.errors import AobError
from orchestrator.cli.client import ApiClient, ClientConfig, load_config, save_config

Handler = Callable[[argparse.Namespace], int]
_WORKFLOW_COLUMNS = ("id", "name", "version", "updated_at")
_RUN_COLUMNS = ("id", "workflow_name", "version", "status", "created_at")
# ``aob runs list`` flags and the GET /api/v1/runs parameters they set.
_RUN_FILTER_FLAGS = (
    ("--since", "created_after"),
    ("--until", "created_before"),
    ("--started-by", "started_by"),
    ("--owner", "owner"),
    ("--schedule", "schedule_id"),
    ("--trigger", "trigger_id"),
    ("--source", "source"),
    ("--id-prefix", "id_prefix"),
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``login``, ``whoami``, ``workflows``, ``runs`` and ``blobs``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    login = subparsers.add_parser("login", help="store the API URL and key (0600, in the user's config dir)")
    login.add_argument("--url", required=True, help="API base URL, e.g. http://127.0.0.1:8080")
    login.add_argument("--key", required=True, help="API key")
    login.set_defaults(func=cmd_login)
    subparsers.add_parser("whoami", parents=[output], help="who the stored key is").set_defaults(func=cmd_whoami)

    workflows = subparsers.add_parser("workflows", help="list, show, create, update, patch workflows")
    wf = workflows.add_subparsers(dest="workflows_command", required=True)
    wf.add_parser("list", parents=[output]).set_defaults(func=cmd_workflows_list)
    show = wf.add_parser("show", parents=[output])
    show.add_argument("workflow", help="id or name")
    show.set_defaults(func=cmd_workflows_show)
    create = wf.add_parser("create", parents=[output], help="create from a definition file")
    create.add_argument("-f", "--file", required=True, type=Path)
    create.add_argument("--name", help="workflow name (default: the definition's name)")
    create.set_defaults(func=cmd_workflows_create)
    update = wf.add_parser("update", parents=[output], help="save a new version from a definition file")
    update.add_argument("workflow", nargs="?", help="id or name (default: the definition's name)")
    update.add_argument("-f", "--file", required=True, type=Path)
    update.set_defaults(func=cmd_workflows_update)
    patch = wf.add_parser("patch", parents=[output], help="save a new version from RFC 6902 ops in a file")
    patch.add_argument("workflow", help="id or name")
    patch.add_argument("-f", "--file", required=True, type=Path, help="JSON list of ops")
    patch.set_defaults(func=cmd_workflows_patch)
    versions = wf.add_parser("versions", parents=[output])
    versions.add_argument("workflow", help="id or name")
    versions.set_defaults(func=cmd_workflows_versions)

    runs = subparsers.add_parser("runs", help="start, list, inspect, cancel, resume runs")
    rn = runs.add_subparsers(dest="runs_command", required=True)
    start = rn.add_parser("start", parents=[output])
    start.add_argument("workflow", help="id or name")
    start.add_argument("--input", "-i", action="append", default=[], metavar="K=V", help="a JSON value or a string")
    start.add_argument("--version", type=int)
    start.add_argument("--idempotency-key")
    start.add_argument("--follow", action="store_true", help="stream events until the run ends")
    start.set_defaults(func=cmd_runs_start)
    listing = rn.add_parser("list", parents=[output], help="the newest runs, filtered (docs/runs.md)")
    listing.add_argument("--workflow")
    listing.add_argument("--status", action="append", default=[], help="repeat for any of several")
    for flag, param in _RUN_FILTER_FLAGS:
        listing.add_argument(flag, dest=param)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=cmd_runs_list)
    for name, func in (("status", cmd_runs_status), ("cancel", cmd_runs_cancel)):
        sub = rn.add_parser(name, parents=[output])
        sub.add_argument("run_id")
        sub.set_defaults(func=func)
    resume = rn.add_parser("resume", parents=[output])
    resume.add_argument("run_id")
    resume.add_argument("--from-node")
    resume.add_argument(
        "--input", "-i", action="append", default=[], metavar="K=V", help="change one input (the others are kept)"
    )
    resume.set_defaults(func=cmd_runs_resume)
    watch = rn.add_parser("watch", help="stream a run's events until it ends")
    watch.add_argument("run_id")
    watch.set_defaults(func=cmd_runs_watch)

    blobs = subparsers.add_parser("blobs", help="read CAS outputs")
    bl = blobs.add_subparsers(dest="blobs_command", required=True)
    get = bl.add_parser("get")
    get.add_argument("digest", help="sha256 hex, or a cas://sha256:<hex> ref")
    get.set_defaults(func=cmd_blobs_get)


def _client() -> ApiClient:
    return ApiClient(load_config())


def _ref(value: str) -> str:
    return quote(value, safe="")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise AobError(f"{path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise AobError(f"{path}: expected JSON: {exc}") from exc


def _print(data: Any, output: str, columns: Sequence[str] | None = None) -> None:
    if output == "json" or columns is None:
        print(json.dumps(data, indent=2))
        return
    rows = data["items"] if isinstance(data, dict) and "items" in data else [data]
    table = [[str(row.get(c, "") if row.get(c) is not None else "") for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def parse_inputs(pairs: Sequence[str]) -> dict[str, Any]:
    """``K=V`` pairs to run inputs; a value that parses as JSON keeps its JSON type."""
    inputs: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise AobError(f"--input: expected K=V, got {pair!r}")
        try:
            inputs[name] = json.loads(raw)
        except ValueError:
            inputs[name] = raw
    return inputs


def cmd_login(args: argparse.Namespace) -> int:
    """Check the key against the API, then store it."""
    config = ClientConfig(args.url.rstrip("/"), args.key)
    with ApiClient(config) as client:
        me = client.request("GET", "/api/v1/me")
    path = save_config(config)
    print(f"logged in to {config.url} as {me['name']} (tenant {me['tenant_id']}, role {me['role']}); saved {path}")
    return 0


def cmd_whoami(args: argparse.Namespace) -> int:
    with _client() as client:
        _print(client.request("GET", "/api/v1/me"), args.output, ("name", "tenant_id", "role", "key_id"))
    return 0


def cmd_workflows_list(args: argparse.Namespace) -> int:
    with _client() as client:
        _print(client.request("GET", "/api/v1/workflows", params={"limit": 200}), args.output, _WORKFLOW_COLUMNS)
    return 0


def cmd_workflows_show(args: argparse.Namespace) -> int:
    with _client() as client:
        workflow = client.request("GET", f"/api/v1/workflows/{_ref(args.workflow)}")
    _print(workflow, args.output, None if args.output == "json" else _WORKFLOW_COLUMNS)
    return 0


def _definition_name(definition: Any, path: Path) -> str:
    name = definition.get("name") if isinstance(definition, dict) else None
    if not name:
        raise AobError(f"{path}: the definition has no 'name'; pass --name")
    return str(name)


def cmd_workflows_create(args: argparse.Namespace) -> int:
    definition = _read_json(args.file)
    name = args.name or _definition_name(definition, args.file)
    with _client() as client:
        created = client.request("POST", "/api/v1/workflows", json={"name": name, "definition": definition})
    for warning in created.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    _print(created, args.output, _WORKFLOW_COLUMNS)
    return 0


def cmd_workflows_update(args: argparse.Namespace) -> int:
    definition = _read_json(args.file)
    ref = args.workflow or _definition_name(definition, args.file)
    with _client() as client:
        updated = client.request("PUT", f"/api/v1/workflows/{_ref(ref)}", json={"definition": definition})
    _print(updated, args.output, _WORKFLOW_COLUMNS)
    return 0


def cmd_workflows_patch(args: argparse.Namespace) -> int:
    ops = _read_json(args.file)
    with _client() as client:
        patched = client.request("PATCH", f"/api/v1/workflows/{_ref(args.workflow)}", json={"ops": ops})
    _print(patched, args.output, _WORKFLOW_COLUMNS)
    return 0


def cmd_workflows_versions(args: argparse.Namespace) -> int:
    with _client() as client:
        versions = client.request("GET", f"/api/v1/workflows/{_ref(args.workflow)}/versions")
    _print(versions, args.output, ("version", "content_hash", "created_at", "created_by"))
    return 0


def _follow(run_id: str) -> int:
    try:
        follow_run: Callable[[ClientConfig, str], int] = importlib.import_module("orchestrator.cli.follow").follow_run
    except (ImportError, AttributeError):
        print(
            "aob: following runs is not available in this build (orchestrator.cli.follow is missing)", file=sys.stderr
        )
        return 2
    return follow_run(load_config(), run_id)


def cmd_runs_start(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"workflow_id": args.workflow, "inputs": parse_inputs(args.input)}
    if args.version is not None:
        body["version"] = args.version
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else {}
    with _client() as client:
        run = client.request("POST", "/api/v1/runs", json=body, headers=headers)
    _print(run, args.output, _RUN_COLUMNS)
    return _follow(run["id"]) if args.follow else 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit, "status": args.status}
    for name in ("workflow", *(param for _, param in _RUN_FILTER_FLAGS)):
        if getattr(args, name):
            params[name] = getattr(args, name)
    with _client() as client:
        runs = client.request("GET", "/api/v1/runs", params=params)
    _print(runs, args.output, _RUN_COLUMNS)
    return 0


def _print_run(run: dict[str, Any], output: str) -> None:
    if output == "json":
        _print(run, output)
        return
    _print(run, output, _RUN_COLUMNS)
    nodes = [
        {"node": node_id, **state, "error": (state.get("error") or {}).get("message")}
        for node_id, state in run.get("nodes", {}).items()
    ]
    if nodes:
        print()
        _print({"items": nodes}, output, ("node", "status", "attempt", "queue_ms", "exec_ms", "error"))


def cmd_runs_status(args: argparse.Namespace) -> int:
    with _client() as client:
        _print_run(client.request("GET", f"/api/v1/runs/{_ref(args.run_id)}"), args.output)
    return 0


def cmd_runs_cancel(args: argparse.Namespace) -> int:
    with _client() as client:
        _print_run(client.request("POST", f"/api/v1/runs/{_ref(args.run_id)}/cancel"), args.output)
    return 0


def cmd_runs_resume(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"from_node": args.from_node} if args.from_node else {}
    with _client() as client:
        if args.input:
            # The API replaces the inputs whole: the run's own, with the ones given changed.
            current = client.request("GET", f"/api/v1/runs/{_ref(args.run_id)}")["inputs"]
            body["inputs"] = current | parse_inputs(args.input)
        _print_run(client.request("POST", f"/api/v1/runs/{_ref(args.run_id)}/resume", json=body), args.output)
    return 0


def cmd_runs_watch(args: argparse.Namespace) -> int:
    return _follow(args.run_id)


def cmd_blobs_get(args: argparse.Namespace) -> int:
    digest = str(args.digest).removeprefix("cas://sha256:")
    with _client() as client:
        blob = client.request("GET", f"/api/v1/blobs/{_ref(digest)}")
    print(json.dumps(blob, indent=2))
    return 0
