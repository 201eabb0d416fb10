"""``aob dlq list|show|replay|discard``: dead letters an admin can read, send back or drop (each action audited)."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from orchestrator.cli.client import ApiClient, load_config
from orchestrator.cli.tables import print_table

_COLUMNS = ("id", "kind", "run_id", "node_id", "reason", "at")
_BASE = "/api/v1/dead-letters"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``dlq list``, ``dlq show``, ``dlq replay`` and ``dlq discard``."""
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--output", "-o", choices=("table", "json"), default="table", help="output format")

    dlq = subparsers.add_parser("dlq", help="dead letters: messages no consumer could handle (admin)")
    sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = sub.add_parser("list", parents=[output], help="newest first")
    listing.add_argument("--run", dest="run_id", help="only this run's dead letters")
    listing.add_argument("--kind", choices=("token", "signal", "entry"), help="only dead letters of this kind")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", help="next_cursor of an earlier page")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", parents=[output], help="one dead letter with its message")
    show.add_argument("letter_id", metavar="ID")
    show.set_defaults(func=cmd_show)

    replay = sub.add_parser("replay", parents=[output], help="send the message back to be consumed again")
    replay.add_argument("letter_id", metavar="ID")
    replay.set_defaults(func=cmd_replay)

    discard = sub.add_parser("discard", help="drop the dead letter without sending its message anywhere")
    discard.add_argument("letter_id", metavar="ID")
    discard.set_defaults(func=cmd_discard)


def _path(letter_id: str, action: str = "") -> str:
    return f"{_BASE}/{quote(letter_id, safe='')}{action}"


def cmd_list(args: argparse.Namespace) -> int:
    """Print one page; the next page's cursor goes to the end of a table."""
    params: dict[str, Any] = {"limit": args.limit}
    for name in ("run_id", "kind", "cursor"):
        if getattr(args, name):
            params[name] = getattr(args, name)
    with ApiClient(load_config()) as client:
        page = client.request("GET", _BASE, params=params)
    if args.output == "json":
        print(json.dumps(page, indent=2))
        return 0
    print_table(page["items"], _COLUMNS)
    if page["next_cursor"]:
        print(f"more: --cursor {page['next_cursor']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Print the dead letter: its fields, then its message as indented JSON."""
    with ApiClient(load_config()) as client:
        letter = client.request("GET", _path(args.letter_id))
    if args.output == "json":
        print(json.dumps(letter, indent=2))
        return 0
    for name, value in letter.items():
        if name != "payload":
            print(f"{name}: {'' if value is None else value}")
    print("payload:")
    print(json.dumps(letter["payload"], indent=2))
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Replay; the API's 409 (run ended, token stale, ...) comes back as a one-line error."""
    with ApiClient(load_config()) as client:
        replayed = client.request("POST", _path(args.letter_id, "/replay"))
    if args.output == "json":
        print(json.dumps(replayed, indent=2))
        return 0
    entry = f" as entry {replayed['entry_id']}" if replayed["entry_id"] else ""
    print(f"dead letter {replayed['id']}: {replayed['kind']} sent back to {replayed['target']}{entry}")
    return 0


def cmd_discard(args: argparse.Namespace) -> int:
    with ApiClient(load_config()) as client:
        client.request("DELETE", _path(args.letter_id))
    print(f"dead letter {args.letter_id} discarded")
    return 0
