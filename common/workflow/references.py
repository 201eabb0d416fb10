"""Refusing workflows that include themselves, directly or through other workflows, when they are saved."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import asyncpg

from common.workflow.store import find_stored_workflow

_TEMPLATE_MARKERS = ("{{", "{%")


def workflow_references(definition: Any) -> Iterator[tuple[str, int | None]]:
    """(workflow id or name, pinned version) of every stored workflow a definition runs, inline bodies included.

    References that are templates are only known at run time and are left out (the depth cap bounds them).
    """
    if not isinstance(definition, dict):
        return
    for node in definition.get("nodes") or []:
        if not isinstance(node, dict) or not isinstance(node.get("config"), dict):
            continue
        config = node["config"]
        kind = node.get("type")
        target = (
            config.get("workflow") if kind == "workflow" else config.get("body") if kind in ("loop", "map") else None
        )
        version = config.get("version") if isinstance(config.get("version"), int) else None
        if isinstance(target, str) and target and not any(m in target for m in _TEMPLATE_MARKERS):
            yield target, version
        elif isinstance(target, dict):
            yield from workflow_references(target)


async def check_workflow_references(
    pool: asyncpg.Pool | asyncpg.Connection, tenant_id: str, name: str, definition: Any
) -> list[str]:
    """Errors for saving ``definition`` as workflow ``name``: each way it would include itself, e.g.
    ``cycle: a -> b -> a``. Unknown references are not errors (the node fails when it runs)."""
    errors: list[str] = []
    # Definitions by workflow name, with ``name`` standing for the definition being saved.
    cache: dict[tuple[str, int | None], tuple[str, Any] | None] = {}

    async def resolve(ref: str, version: int | None) -> tuple[str, Any] | None:
        if (ref, version) not in cache:
            found = await find_stored_workflow(pool, tenant_id, ref, version)
            if found is None:
                cache[(ref, version)] = (name, definition) if ref == name and version is None else None
            elif found[0]["name"] == name and version is None:
                cache[(ref, version)] = (name, definition)
            else:
                cache[(ref, version)] = (str(found[0]["name"]), found[1])
        return cache[(ref, version)]

    reported: set[tuple[str, ...]] = set()
    path = [name]
    # A workflow explored once is not explored again: every cycle through it was found the first time.
    explored: set[str] = {name}

    async def walk(current: Any) -> None:
        for ref, version in workflow_references(current):
            target = await resolve(ref, version)
            if target is None:
                continue
            target_name, target_definition = target
            if target_name == name:
                cycle = (*path, name)
                if cycle not in reported:
                    reported.add(cycle)
                    errors.append("cycle: " + " -> ".join(cycle))
            elif target_name not in explored:
                explored.add(target_name)
                path.append(target_name)
                await walk(target_definition)
                path.pop()

    await walk(definition)
    return errors
