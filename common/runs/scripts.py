"""The Lua scripts that change run state, loaded once per client and called by SHA (reloaded on NOSCRIPT)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from common.keys import Keys, KeyTemplate
from common.runs.decisions import Decision

LUA_DIR = Path(__file__).resolve().parent / "lua"
# Scripts that share the run-state prelude; the others stand alone.
RUN_SCRIPTS = (
    "start_runs",
    "apply_completion",
    "end_run",
    "mark_started",
    "set_outputs",
    "patch_run",
    "resume_run",
    "request_approval",
    "rebuild_run",
)
STANDALONE_SCRIPTS = ("move_due", "drain_signals", "read_tokens")


@cache
def script_source(name: str) -> str:
    """The Lua text of ``name``, with the shared prelude for run-state scripts."""
    body = (LUA_DIR / f"{name}.lua").read_text()
    if name in RUN_SCRIPTS:
        return (LUA_DIR / "_lib.lua").read_text() + "\n" + body
    return body


def now_ms() -> float:
    """Wall-clock time in milliseconds (microsecond precision), the unit of every timestamp in run state."""
    return round(time.time() * 1000, 3)


class Scripts:
    """Every state-changing script, registered on one client."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        tasks = KeyTemplate.of(keys.tasks).for_lua()
        self._tasks_template = json.dumps(tasks)
        # ARGV[1] of the run-state scripts: the keys they name from data they read (see _lib.lua).
        self._templates = json.dumps(
            {
                "tasks": tasks,
                "tenant_events": KeyTemplate.of(keys.tenant_events).for_lua(),
                "tenant_active_runs": KeyTemplate.of(keys.tenant_active_runs).for_lua(),
            }
        )
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(script_source(name)) for name in RUN_SCRIPTS + STANDALONE_SCRIPTS
        }

    def run_keys(self, run_id: str) -> list[str]:
        """KEYS of a run-state script, in the order the prelude expects."""
        k = self.keys
        return [
            k.run(run_id),
            k.ir(run_id),
            k.applied(run_id),
            k.nodes(run_id),
            k.ctx(run_id),
            k.join(run_id),
            k.events(run_id),
            k.ledger,
            k.run_deadlines,
            k.delayed,
            k.children,
        ]

    async def run_script(
        self,
        name: str,
        run_id: str,
        *args: Any,
        client: aioredis.Redis | None = None,
        extra_keys: Sequence[str] = (),
    ) -> Any:
        """Call a run-state script for ``run_id``; ``client`` may be a pipeline; ``extra_keys`` follow the run's."""
        argv = [self._templates, *args]
        return await self._scripts[name](keys=[*self.run_keys(run_id), *extra_keys], args=argv, client=client)

    async def run_batch_script(self, name: str, keys: list[str], *args: Any) -> Any:
        """Call a run-state script that handles several runs; ``keys`` already holds each run's (see _lib.lua)."""
        return await self._scripts[name](keys=keys, args=[self._templates, *args])

    async def apply_completions(self, batch: list[tuple[str, Decision, str]], max_agents: int) -> list[list[Any]]:
        """Apply decisions in one script call; ``batch`` holds (run id, decision, graph JSON) triples.

        Returns ``[result, run status, has outputs]`` per decision, in order.
        """
        graphs: dict[str, int] = {}
        runs: dict[str, int] = {}
        keys: list[str] = []
        graph_of: list[int] = []
        run_of: list[int] = []
        for run_id, _, graph_json in batch:
            if run_id not in runs:
                # The first run brings the four keys every run shares; each further run only its seven own.
                keys += self.run_keys(run_id)[: 7 if runs else None]
                runs[run_id] = len(runs)
            run_of.append(runs[run_id])
            graph_of.append(graphs.setdefault(graph_json, len(graphs) + 1))
        # Graphs are JSON already and each decision serialises itself: splice the texts into lists.
        decisions_json = "[" + ",".join(decision.for_lua() for _, decision, _ in batch) + "]"
        graphs_json = "[" + ",".join(graphs) + "]"
        argv = [self._templates, max_agents, decisions_json, graphs_json]
        args = [*argv, json.dumps(graph_of), json.dumps(run_of)]
        result = await self._scripts["apply_completion"](keys=keys, args=args)
        return list(result)

    async def move_due(self, batch: int, client: aioredis.Redis | None = None) -> int:
        """Move due delayed tokens to their task streams; returns how many moved."""
        result = await self._scripts["move_due"](
            keys=[self.keys.delayed],
            args=[self._tasks_template, batch],
            client=client,
        )
        return int(result)

    async def read_tokens(
        self, tokens: Sequence[tuple[str, str, list[str]]], run_fields: Sequence[str], ir_runs: Sequence[str]
    ) -> list[Any]:
        """For each (run id, node id, output node ids) the run's ``run_fields``, the node's state and the output
        refs, then the IR text of each run in ``ir_runs``, in one call."""
        keys: list[str] = []
        for run_id, _, _ in tokens:
            keys += [self.keys.run(run_id), self.keys.nodes(run_id), self.keys.ctx(run_id)]
        keys += [self.keys.ir(run_id) for run_id in ir_runs]
        asks = json.dumps([[node_id, needed] for _, node_id, needed in tokens])
        return list(await self._scripts["read_tokens"](keys=keys, args=[len(tokens), asks, *run_fields]))

    async def drain_signals(self, inflight_key: str, batch: int) -> list[str]:
        """Move up to ``batch`` waiting signals into ``inflight_key``; returns them."""
        result = await self._scripts["drain_signals"](keys=[self.keys.completion_signals, inflight_key], args=[batch])
        return list(result)
