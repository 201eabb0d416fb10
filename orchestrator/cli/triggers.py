"""``aob triggers create|list|rotate|retire|delete``: webhook triggers of the caller's tenant (editor to write)."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from common.errors import AobError
from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_COLUMNS = ("id", "name", "workflow_id", "version", "auth", "paused", "rate_per_min", "created_at")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``triggers create``, ``list``, ``rotate``, ``retire`` and ``delete``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    triggers = subparsers.add_parser("triggers", help="webhook triggers: URLs that start runs")
    sub = triggers.add_subparsers(dest="triggers_command", required=True)
    create = sub.add_parser("create", parents=[output], help="create a trigger; its secret is printed once")
    create.add_argument("workflow", help="workflow id or name")
    create.add_argument("--name")
    create.add_argument("--auth", choices=("hmac", "bearer"), default="hmac")
    create.add_argument("--version", type=int, help="pin a workflow version (default: the latest at each delivery)")
    create.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="INPUT=TEMPLATE",
        help="run input from a template over body and headers, e.g. city='{{ body.city }}' (repeatable)",
    )
    create.add_argument("--header", action="append", default=[], help="a request header templates may read")
    create.add_argument("--rate-per-min", type=int, help="deliveries per rate-limit window (default 60)")
    create.set_defaults(func=cmd_create)
    sub.add_parser("list", parents=[output], help="the tenant's triggers, newest first").set_defaults(func=cmd_list)
    rotate = sub.add_parser("rotate", parents=[output], help="add a new secret; the old one stays valid until retired")
    rotate.add_argument("trigger_id")
    rotate.set_defaults(func=cmd_rotate)
    retire = sub.add_parser("retire", help="retire every secret but the newest")
    retire.add_argument("trigger_id")
    retire.set_defaults(func=cmd_retire)
    delete = sub.add_parser("delete", help="delete a trigger; its URL answers 404 from then on")
    delete.add_argument("trigger_id")
    delete.set_defaults(func=cmd_delete)


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, template = pair.partition("=")
        if not sep or not name:
            raise AobError(f"--map: expected INPUT=TEMPLATE, got {pair!r}")
        mapping[name] = template
    return mapping


def _print_secret(created: dict[str, Any], args: argparse.Namespace, what: str) -> None:
    if args.output == "json":
        print(json.dumps(created, indent=2))
        return
    print(f"trigger {created['id']} ({created['auth']}), URL path {created['hook_path']}; {what} (shown once):")
    print(created["secret"])


def cmd_create(args: argparse.Namespace) -> int:
    """Create the trigger and print its URL path and secret."""
    body: dict[str, Any] = {"workflow": args.workflow, "auth": args.auth}
    body |= {"input_mapping": _mapping(args.map), "headers": args.header}
    optional = {"name": args.name, "version": args.version, "rate_per_min": args.rate_per_min}
    body |= {field: value for field, value in optional.items() if value is not None}
    with ApiClient(load_config()) as client:
        created = client.request("POST", "/api/v1/triggers", json=body)
    _print_secret(created, args, "secret")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the tenant's triggers (never their secrets)."""
    with ApiClient(load_config()) as client:
        page = client.request("GET", "/api/v1/triggers")
    if args.output == "json":
        print(json.dumps(page, indent=2))
    else:
        print_table(page["items"], _COLUMNS)
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    """Add a secret and print it; both it and the previous one are accepted until ``retire``."""
    with ApiClient(load_config()) as client:
        rotated = client.request("POST", f"/api/v1/triggers/{quote(args.trigger_id, safe='')}/rotate")
    _print_secret(rotated, args, "new secret; the old one stays valid until `aob triggers retire`")
    return 0


def cmd_retire(args: argparse.Namespace) -> int:
    """Retire the older secret(s)."""
    with ApiClient(load_config()) as client:
        retired = client.request("POST", f"/api/v1/triggers/{quote(args.trigger_id, safe='')}/retire")
    print(f"retired {retired['retired']} secret(s) of {args.trigger_id}")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete the trigger."""
    with ApiClient(load_config()) as client:
        client.request("DELETE", f"/api/v1/triggers/{quote(args.trigger_id, safe='')}")
    print(f"deleted {args.trigger_id}")
    return 0
