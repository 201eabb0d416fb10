"""Resolving what a control node runs: a stored workflow of the same tenant, or an inline definition."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from common.errors import NodeFailed, ValidationFailed
from common.workflow.child_run_limits import ChildRunLimits, child_run_limit_errors
from common.workflow.compiler import compile_definition
from common.workflow.ir import IR
from common.workflow.store import find_stored_workflow

_CACHE_ENTRIES = 256


class BodyRef(BaseModel):
    """Which workflow and version child runs are recorded under."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    workflow_id: str
    workflow_name: str
    version: int


@dataclass(frozen=True)
class Body:
    """A resolved body: what the child runs are recorded under, and the IR they execute."""

    ref: BodyRef
    ir: IR


class BodyResolver:
    """Loads and compiles bodies; compiled stored versions are cached (they never change)."""

    def __init__(self, pool: asyncpg.Pool, max_agents: int, limits: ChildRunLimits) -> None:
        self._pool = pool
        self._max_agents = max_agents
        # Bodies saved before the limits were lowered, and inline ones, meet them here.
        self._limits = limits
        self._compiled: OrderedDict[tuple[str, int], Body] = OrderedDict()

    async def stored(self, tenant_id: str, ref: str, version: int | None, *, at: str) -> Body:
        """The body of workflow ``ref`` (id or name); raises ``NodeFailed`` naming ``at`` when it is missing."""
        found = await find_stored_workflow(self._pool, tenant_id, ref, version)
        if found is None:
            wanted = f"workflow {ref!r}" + (f" version {version}" if version else "")
            raise NodeFailed(f"{at}: {wanted} not found in this tenant", retryable=False, error_type="invalid_config")
        workflow, definition = found
        key = (str(workflow["id"]), int(version or workflow["latest_version"]))
        cached = self._compiled.get(key)
        if cached is not None:
            self._compiled.move_to_end(key)
            return cached
        ir = self._compile(definition, str(workflow["name"]), at=at)
        body = Body(BodyRef(workflow_id=key[0], workflow_name=str(workflow["name"]), version=key[1]), ir)
        self._compiled[key] = body
        if len(self._compiled) > _CACHE_ENTRIES:
            self._compiled.popitem(last=False)
        return body

    def inline(self, definition: dict[str, Any], ref: BodyRef, *, at: str) -> Body:
        """An inline body, recorded under ``ref`` (the parent's workflow, named after the node)."""
        return Body(ref, self._compile(definition, ref.workflow_name, at=at))

    def _compile(self, definition: Any, name: str, *, at: str) -> IR:
        try:
            result = compile_definition(definition, max_agents=self._max_agents, name=name)
        except ValidationFailed as exc:
            raise NodeFailed(
                f"{at}: body does not compile: {'; '.join(exc.errors)}", retryable=False, error_type="invalid_config"
            ) from None
        errors = child_run_limit_errors(result.definition.to_json(), self._limits)
        if errors:
            raise NodeFailed(
                f"{at}: body is over a limit: {'; '.join(errors)}", retryable=False, error_type="quota_exceeded"
            )
        return result.ir
