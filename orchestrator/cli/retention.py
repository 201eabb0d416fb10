"""``aob prune``: delete runs that ended long ago (admin); ``aob audit``: what operators did."""

from __future__ import annotations

import argparse
import json
from typing import Any

from common.durations import parse_duration
from common.errors import AobError
from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_COUNTS = ("runs", "run_steps", "run_events", "node_logs", "patches", "approvals", "blobs")
_AUDIT_COLUMNS = ("at", "action", "target", "key_id", "tenant_id")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``prune`` and ``audit list``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    prune = subparsers.add_parser(
        "prune", parents=[output], help="delete runs that ended before a cutoff, with their records and blobs"
    )
    prune.add_argument("--older-than", required=True, type=_duration, help="e.g. 30d, 12h, 90m")
    prune.add_argument("--dry-run", action="store_true", help="count what would go, delete nothing")
    prune.add_argument("--all-tenants", action="store_true", help="every tenant's runs (bootstrap admin only)")
    prune.set_defaults(func=cmd_prune)

    audit = subparsers.add_parser("audit", help="the audit log of operators' actions (admin)")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    listing = sub.add_parser("list", parents=[output], help="newest first")
    listing.add_argument("--action", help="only this action, e.g. dead_letter.replay or runs.prune")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", help="next_cursor of an earlier page")
    listing.set_defaults(func=cmd_audit_list)


def _duration(text: str) -> str:
    """Checked here so a typo fails before any request, with the same message the API gives."""
    try:
        parse_duration(text)
    except AobError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return text.strip()


def cmd_prune(args: argparse.Namespace) -> int:
    """Prune (or count, with ``--dry-run``) and print what went."""
    body = {"older_than": args.older_than, "dry_run": args.dry_run, "all_tenants": args.all_tenants}
    with ApiClient(load_config()) as client:
        report = client.request("POST", "/api/v1/admin/prune", json=body)
    if args.output == "json":
        print(json.dumps(report, indent=2))
        return 0
    verb = "would delete" if report["dry_run"] else "deleted"
    print(f"runs that ended before {report['cutoff']}: {verb}")
    for name in _COUNTS:
        print(f"  {name}: {report[name]}")
    return 0


def cmd_audit_list(args: argparse.Namespace) -> int:
    """Print one page of audit entries; the next page's cursor goes to the end of a table."""
    params: dict[str, Any] = {"limit": args.limit}
    for name in ("action", "cursor"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    with ApiClient(load_config()) as client:
        page = client.request("GET", "/api/v1/audit", params=params)
    if args.output == "json":
        print(json.dumps(page, indent=2))
        return 0
    print_table(page["items"], _AUDIT_COLUMNS)
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}")
    return 0
