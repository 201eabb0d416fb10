"""``aob validate FILE``: check a workflow definition offline and list every problem found."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common.errors import ValidationFailed
from common.settings import ApiSettings, load_settings
from common.workflow.child_run_limits import ChildRunLimits, check_child_run_limits
from common.workflow.compiler import compile_definition
from common.workflow.limits import DefinitionLimits


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` subcommand."""
    parser = subparsers.add_parser(
        "validate",
        help="validate a workflow definition (JSON)",
        description="Validate and compile a workflow definition; exit 0 when valid, 1 otherwise.",
    )
    parser.add_argument("file", help="definition JSON file, or - for stdin")
    parser.add_argument(
        "--max-agents", type=int, default=None, help="agent node limit (default: AOB_MAX_AGENTS, else 5)"
    )
    parser.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    """Print ``ok: N nodes, M edges`` and warnings (exit 0), or each error on stderr (exit 1)."""
    definition, problem = _load(args.file)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    # The limits the API compiles submitted definitions under (--max-agents overrides the agent limit).
    settings = load_settings(ApiSettings)
    max_agents = args.max_agents if args.max_agents is not None else settings.max_agents
    try:
        result = compile_definition(definition, max_agents=max_agents, limits=DefinitionLimits.of(settings))
        check_child_run_limits(result.definition.to_json(), ChildRunLimits.of(settings))
    except ValidationFailed as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"ok: {len(result.definition.nodes)} nodes, {len(result.definition.edges)} edges")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _load(file: str) -> tuple[Any, str | None]:
    """The parsed JSON of ``file`` (``-`` = stdin), or a one-line reason it could not be read."""
    source = "stdin" if file == "-" else file
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"cannot read {source}: {exc}"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
