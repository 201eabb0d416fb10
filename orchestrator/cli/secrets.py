"""``aob secrets set|list|delete|rotate|keygen``: the tenant's secrets store; values are written, never read.

A value is read from stdin or a hidden prompt, never from the command line, where shell history and ``ps`` would
keep it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from urllib.parse import quote

from common.errors import AobError
from common.secrets import Keyring
from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_COLUMNS = ("name", "updated_at", "updated_by", "created_at")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``secrets set``, ``list``, ``delete``, ``rotate`` and ``keygen``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    secrets = subparsers.add_parser("secrets", help="the tenant's secrets, for {{ secrets.NAME }} in node configs")
    sub = secrets.add_subparsers(dest="secrets_command", required=True)
    put = sub.add_parser("set", parents=[output], help="create or replace a secret (admin); value from stdin")
    put.add_argument("name")
    put.add_argument("--from-file", help="read the value from this file instead of stdin")
    put.set_defaults(func=cmd_set)
    listing = sub.add_parser("list", parents=[output], help="names and times, never values")
    listing.set_defaults(func=cmd_list)
    delete = sub.add_parser("delete", help="delete a secret (admin)")
    delete.add_argument("name")
    delete.set_defaults(func=cmd_delete)
    rotate = sub.add_parser(
        "rotate", parents=[output], help="re-encrypt secrets under the first key of AOB_SECRETS_KEYS (admin)"
    )
    rotate.add_argument("--all-tenants", action="store_true", help="every tenant's (bootstrap admin only)")
    rotate.set_defaults(func=cmd_rotate)
    keygen = sub.add_parser("keygen", help="print a new key for AOB_SECRETS_KEYS")
    keygen.set_defaults(func=cmd_keygen)


def cmd_set(args: argparse.Namespace) -> int:
    """Send the value read from ``--from-file``, stdin, or a hidden prompt on a terminal."""
    value = _read_value(args.from_file)
    with ApiClient(load_config()) as client:
        info = client.request("PUT", f"/api/v1/secrets/{quote(args.name, safe='')}", json={"value": value})
    if args.output == "json":
        print(json.dumps(info, indent=2))
    else:
        print(f"secret {info['name']} set at {info['updated_at']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the tenant's secrets by name."""
    with ApiClient(load_config()) as client:
        page = client.request("GET", "/api/v1/secrets")
    if args.output == "json":
        print(json.dumps(page, indent=2))
    else:
        print_table(page["items"], _COLUMNS)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete one secret."""
    with ApiClient(load_config()) as client:
        client.request("DELETE", f"/api/v1/secrets/{quote(args.name, safe='')}")
    print(f"secret {args.name} deleted")
    return 0


def cmd_rotate(args: argparse.Namespace) -> int:
    """Re-encrypt and say how many secrets were."""
    with ApiClient(load_config()) as client:
        report = client.request("POST", "/api/v1/secrets/rotate", json={"all_tenants": args.all_tenants})
    if args.output == "json":
        print(json.dumps(report, indent=2))
    else:
        print(f"secrets re-encrypted under the first key: {report['rotated']}")
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    """Print a new random key."""
    print(Keyring.generate_key())
    return 0


def _read_value(path: str | None) -> str:
    if path is not None:
        try:
            return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise AobError(f"--from-file: cannot read {path!r}: {exc.strerror}") from None
    if sys.stdin.isatty():
        return getpass.getpass("secret value: ")
    return sys.stdin.read().rstrip("\r\n")
