"""The ``aob`` command line: one subcommand module per concern, each exposing ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys

from common.errors import AobError

# Each module adds its own subcommands; a subcommand sets ``func(args) -> int`` as its handler.
COMMAND_MODULES = (
    "orchestrator.cli.validate",
    "orchestrator.cli.services",
    "orchestrator.cli.up",
    "orchestrator.cli.api_commands",
    "orchestrator.cli.approvals",
    "orchestrator.cli.keys",
    "orchestrator.cli.dlq",
    "orchestrator.cli.retention",
    "orchestrator.cli.secrets",
    "orchestrator.cli.triggers",
    "orchestrator.cli.schedules",
    "orchestrator.cli.notifications",
)


def build_parser() -> argparse.ArgumentParser:
    """The full ``aob`` argument parser."""
    parser = argparse.ArgumentParser(prog="aob", description="aob: agentic workflow orchestration")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``aob`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except AobError as exc:
        print(f"aob: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
