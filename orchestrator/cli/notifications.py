"""``aob notifications list|create|pause|resume|delete|deliveries``: the tenant's notification subscriptions."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_PATH = "/api/v1/notifications/subscriptions"
_EVENTS = ("approval_requested", "approval_decided", "run_failed", "run_timed_out", "run_succeeded")
_COLUMNS = ("id", "channel", "target", "events", "workflow_id", "format", "paused", "created_at")
_DELIVERY_COLUMNS = ("created_at", "event_type", "run_id", "attempt", "status", "response_code", "error")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``notifications`` subcommands."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    parser = subparsers.add_parser("notifications", help="webhook and e-mail notifications of runs and approvals")
    sub = parser.add_subparsers(dest="notifications_command", required=True)
    sub.add_parser("list", parents=[output], help="the tenant's subscriptions").set_defaults(func=cmd_list)
    create = sub.add_parser("create", parents=[output], help="subscribe; a webhook's signing secret is shown once")
    target = create.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="webhook URL (POSTed to, signed)")
    target.add_argument("--email", help="e-mail address (needs AOB_SMTP_HOST on the coordinators)")
    create.add_argument("--event", action="append", choices=_EVENTS, required=True, help="repeat for several")
    create.add_argument("--workflow", help="only this workflow id's runs (default: all)")
    create.add_argument("--format", choices=("json", "slack"), default="json", help="webhook body")
    create.set_defaults(func=cmd_create)
    for name, paused in (("pause", True), ("resume", False)):
        toggle = sub.add_parser(name, parents=[output], help=f"{name} a subscription")
        toggle.add_argument("subscription_id")
        toggle.set_defaults(func=cmd_set_paused, paused=paused)
    delete = sub.add_parser("delete", help="delete a subscription and its delivery log")
    delete.add_argument("subscription_id")
    delete.set_defaults(func=cmd_delete)
    deliveries = sub.add_parser("deliveries", parents=[output], help="a subscription's delivery attempts")
    deliveries.add_argument("subscription_id")
    deliveries.add_argument("--limit", type=int, default=100)
    deliveries.set_defaults(func=cmd_deliveries)


def _show(value: Any, args: argparse.Namespace, columns: tuple[str, ...]) -> None:
    if args.output == "json":
        print(json.dumps(value, indent=2))
    else:
        print_table(value["items"] if isinstance(value, dict) and "items" in value else [value], columns)


def cmd_create(args: argparse.Namespace) -> int:
    """Create the subscription; print it, and a webhook's secret on a line of its own."""
    body: dict[str, Any] = {"events": args.event, "format": args.format, "workflow_id": args.workflow}
    body |= {"channel": "webhook", "url": args.url} if args.url else {"channel": "email", "address": args.email}
    with ApiClient(load_config()) as client:
        created = client.request("POST", _PATH, json=body)
    if args.output == "json":
        print(json.dumps(created, indent=2))
        return 0
    print(f"subscription {created['id']} ({created['channel']} to {created['target']})")
    if created.get("secret"):
        print(f"signing secret (shown once): {created['secret']}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """Print the tenant's subscriptions."""
    with ApiClient(load_config()) as client:
        _show(client.request("GET", _PATH), args, _COLUMNS)
    return 0


def cmd_set_paused(args: argparse.Namespace) -> int:
    """Pause or resume the subscription."""
    with ApiClient(load_config()) as client:
        path = f"{_PATH}/{quote(args.subscription_id, safe='')}"
        _show(client.request("PATCH", path, json={"paused": args.paused}), args, _COLUMNS)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """Delete the subscription; the API's 404 comes back as a one-line error."""
    with ApiClient(load_config()) as client:
        client.request("DELETE", f"{_PATH}/{quote(args.subscription_id, safe='')}")
    print(f"deleted {args.subscription_id}")
    return 0


def cmd_deliveries(args: argparse.Namespace) -> int:
    """Print the subscription's delivery attempts, newest first."""
    with ApiClient(load_config()) as client:
        path = f"{_PATH}/{quote(args.subscription_id, safe='')}/deliveries"
        _show(client.request("GET", path, params={"limit": args.limit}), args, _DELIVERY_COLUMNS)
    return 0
