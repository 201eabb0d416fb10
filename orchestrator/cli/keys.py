"""``aob keys create|list|revoke``: API keys of the caller's tenant (admin), each with a role and an owner."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from common.roles import KEY_ROLES
from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_COLUMNS = ("id", "name", "owner", "role", "created_at", "revoked_at")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``keys create``, ``keys list`` and ``keys revoke``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    keys = subparsers.add_parser("keys", help="create, list and revoke API keys (admin)")
    sub = keys.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", parents=[output], help="create a key; it is printed once, never again")
    create.add_argument("name")
    create.add_argument("--role", choices=KEY_ROLES, default="editor")
    create.add_argument("--owner", help="person or service holding the key (default: the name); approvals count owners")
    create.add_argument("--tenant", help="another tenant (bootstrap admin only)")
    create.set_defaults(func=cmd_create)
    sub.add_parser("list", parents=[output], help="the tenant's keys, newest first").set_defaults(func=cmd_list)
    revoke = sub.add_parser("revoke", help="revoke a key; it stops working at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_revoke)


def cmd_create(args: argparse.Namespace) -> int:
    """Create the key and print it with its id, role and owner."""
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    body |= {field: getattr(args, field) for field in ("owner", "tenant") if getattr(args, field) is not None}
    with ApiClient(load_config()) as client:
        created = client.request("POST", "/api/v1/api-keys", json=body)
    if args.output == "json":
        print(json.dumps(created, indent=2))
        return 0
    print(f"key {created['id']} ({created['name']}, owner {created['owner']}, role {created['role']}):")
    print(created["key"])
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the tenant's keys (never the keys themselves)."""
    with ApiClient(load_config()) as client:
        page = client.request("GET", "/api/v1/api-keys")
    if args.output == "json":
        print(json.dumps(page, indent=2))
    else:
        print_table(page["items"], _COLUMNS)
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    """Revoke the key; the API's 404 comes back as a one-line error."""
    with ApiClient(load_config()) as client:
        client.request("DELETE", f"/api/v1/api-keys/{quote(args.key_id, safe='')}")
    print(f"revoked {args.key_id}")
    return 0
