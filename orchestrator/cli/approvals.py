"""``aob approvals list``, ``aob approve ID``, ``aob reject ID``: human decisions on hitl nodes."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from orchestrator.cli.client import ApiClient, load_config

_COLUMNS = ("id", "run_id", "node_id", "status", "title", "created_at")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``approvals list``, ``approve`` and ``reject``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    approvals = subparsers.add_parser("approvals", help="list approvals waiting for a decision")
    sub = approvals.add_subparsers(dest="approvals_command", required=True)
    listing = sub.add_parser("list", parents=[output], help="newest first; pending ones unless --status says")
    listing.add_argument(
        "--status", default="pending", choices=("pending", "approved", "rejected", "cancelled", "expired", "all")
    )
    listing.add_argument("--run", dest="run_id", help="only this run's approvals")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", help="next_cursor of an earlier page")
    listing.set_defaults(func=cmd_list)

    for name, decision in (("approve", "approve"), ("reject", "reject")):
        command = subparsers.add_parser(name, parents=[output], help=f"{name} a pending approval")
        command.add_argument("approval_id")
        command.add_argument("--comment", "-m", help="why, recorded with the decision")
        command.set_defaults(func=cmd_decide, decision=decision)


def cmd_list(args: argparse.Namespace) -> int:
    """Print one page of approvals; the next page's cursor goes to the end of a table."""
    params: dict[str, Any] = {"limit": args.limit}
    if args.status != "all":
        params["status"] = args.status
    if args.run_id:
        params["run_id"] = args.run_id
    if args.cursor:
        params["cursor"] = args.cursor
    with ApiClient(load_config()) as client:
        page = client.request("GET", "/api/v1/approvals", params=params)
    if args.output == "json":
        print(json.dumps(page, indent=2))
        return 0
    _print_table(page["items"])
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    """Send the decision; the API's 403/409 come back as a one-line error."""
    body: dict[str, Any] = {"decision": args.decision}
    if args.comment is not None:
        body["comment"] = args.comment
    with ApiClient(load_config()) as client:
        approval = client.request("POST", f"/api/v1/approvals/{quote(args.approval_id, safe='')}/decide", json=body)
    if args.output == "json":
        print(json.dumps(approval, indent=2))
        return 0
    needed = approval.get("required_approvals", 1)
    # The API counts owners, not keys: a person's second key adds nothing to the quorum.
    approvals = len({d.get("owner") or d.get("key_id") for d in approval["decisions"] if d["decision"] == "approve"})
    suffix = f" ({approvals}/{needed} approvals)" if approval["status"] == "pending" else ""
    print(f"approval {approval['id']} of run {approval['run_id']}: {approval['status']}{suffix}")
    return 0


def _print_table(rows: list[dict[str, Any]]) -> None:
    table = [["" if row.get(c) is None else str(row[c]) for c in _COLUMNS] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(_COLUMNS)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip())
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
