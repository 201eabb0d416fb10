"""``aob schedules create|list|get|pause|resume|delete``: workflows started on a cron expression or an interval."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from common.errors import AobError
from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_COLUMNS = ("id", "workflow_id", "cron", "timezone", "interval_s", "overlap", "catchup", "paused", "next_fire_at")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``schedules create``, ``list``, ``get``, ``pause``, ``resume`` and ``delete``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")
    one = argparse.ArgumentParser(add_help=False)
    one.add_argument("id", help="schedule id")

    schedules = subparsers.add_parser("schedules", help="start workflows on a cron expression or an interval")
    sub = schedules.add_subparsers(dest="schedules_command", required=True)
    create = sub.add_parser("create", parents=[output], help="create a schedule (editor)")
    create.add_argument("workflow", help="workflow name or id")
    timing = create.add_mutually_exclusive_group(required=True)
    timing.add_argument("--cron", help="cron expression, e.g. '0 6 * * 1-5'")
    timing.add_argument("--every", type=int, metavar="SECONDS", help="fire every SECONDS (aligned to the epoch)")
    create.add_argument("--timezone", default="UTC", help="IANA time zone of the cron expression (default UTC)")
    create.add_argument("--version", type=int, help="pin a workflow version (default: the latest at each fire)")
    create.add_argument("--inputs", default="{}", help="run inputs as a JSON object")
    create.add_argument("--overlap", choices=("skip", "allow"), default="skip", help="while a run is live")
    create.add_argument("--catchup", choices=("none", "last", "all"), default="none", help="after an outage")
    create.add_argument("--catchup-max", type=int, default=10, help="with --catchup all: at most this many")
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.set_defaults(func=cmd_create)
    listing = sub.add_parser("list", parents=[output], help="the tenant's schedules")
    listing.add_argument("--workflow", help="only this workflow's (name or id)")
    listing.set_defaults(func=cmd_list)
    sub.add_parser("get", parents=[output, one], help="one schedule with its next fire times").set_defaults(
        func=cmd_get
    )
    sub.add_parser("pause", parents=[output, one], help="stop firing (editor)").set_defaults(func=cmd_pause)
    sub.add_parser(
        "resume", parents=[output, one], help="fire again from the next fire time after now (editor)"
    ).set_defaults(func=cmd_resume)
    sub.add_parser("delete", parents=[one], help="delete a schedule (editor)").set_defaults(func=cmd_delete)


def cmd_create(args: argparse.Namespace) -> int:
    """Create a schedule and print it."""
    body: dict[str, Any] = {
        "workflow": args.workflow,
        "timezone": args.timezone,
        "inputs": _inputs(args.inputs),
        "overlap": args.overlap,
        "catchup": args.catchup,
        "catchup_max": args.catchup_max,
        "paused": args.paused,
    }
    body |= {"cron": args.cron} if args.cron is not None else {"interval_s": args.every}
    if args.version is not None:
        body["version"] = args.version
    with ApiClient(load_config()) as client:
        _print_one(client.request("POST", "/api/v1/schedules", json=body), args.output)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the tenant's schedules."""
    params = {"workflow": args.workflow} if args.workflow else {}
    with ApiClient(load_config()) as client:
        page = client.request("GET", "/api/v1/schedules", params=params)
    if args.output == "json":
        print(json.dumps(page, indent=2))
    else:
        print_table(page["items"], _COLUMNS)
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Print one schedule and its next fire times."""
    with ApiClient(load_config()) as client:
        _print_one(client.request("GET", _path(args.id)), args.output)
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    """Pause a schedule."""
    with ApiClient(load_config()) as client:
        _print_one(client.request("PATCH", _path(args.id), json={"paused": True}), args.output)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    """Resume a schedule; fire times missed while paused are not caught up."""
    with ApiClient(load_config()) as client:
        _print_one(client.request("PATCH", _path(args.id), json={"paused": False}), args.output)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete a schedule."""
    with ApiClient(load_config()) as client:
        client.request("DELETE", _path(args.id))
    print(f"schedule {args.id} deleted")
    return 0


def _path(schedule_id: str) -> str:
    return f"/api/v1/schedules/{quote(schedule_id, safe='')}"


def _inputs(text: str) -> dict[str, Any]:
    try:
        inputs = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AobError(f"--inputs: expected a JSON object, got {text!r}: {exc.msg}") from None
    if not isinstance(inputs, dict):
        raise AobError(f"--inputs: expected a JSON object, got {type(inputs).__name__}")
    return inputs


def _print_one(schedule: dict[str, Any], output: str) -> None:
    if output == "json":
        print(json.dumps(schedule, indent=2))
        return
    print_table([schedule], _COLUMNS)
    if schedule["next_fire_times"]:
        print("next fire times: " + ", ".join(schedule["next_fire_times"]))
    else:
        print("next fire times: none (paused)")
