"""The Lua scripts that change run state, loaded once per client and called by SHA (reloaded on NOSCRIPT)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

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


T = TypeVar("T")


def by_shard(keys: Keys, items: Sequence[T], run_id_of: Callable[[T], str]) -> dict[int, list[int]]:
    """The positions of ``items`` grouped by the shard of each item's run: one script call per group."""
    groups: dict[int, list[int]] = {}
    for position, item in enumerate(items):
        groups.setdefault(keys.shard_of(run_id_of(item)), []).append(position)
    return groups


def now_ms() -> float:
    """Wall-clock time in milliseconds (microsecond precision), the unit of every timestamp in run state."""
    return round(time.time() * 1000, 3)


class Scripts:
    """Every state-changing script, registered on one client. Each call addresses the keys of one shard."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        # ARGV[1] of the run-state scripts, per shard: the keys they name from data they read (see _lib.lua).
        self._tasks_templates = [json.dumps(KeyTemplate.of(shard.tasks).for_lua()) for shard in keys.all_shards()]
        self._templates = [
            json.dumps(
                {
                    "tasks": KeyTemplate.of(shard.tasks).for_lua(),
                    "tenant_events": KeyTemplate.of(shard.tenant_events).for_lua(),
                }
            )
            for shard in keys.all_shards()
        ]
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(script_source(name)) for name in RUN_SCRIPTS + STANDALONE_SCRIPTS
        }

    def run_keys(self, run_id: str) -> list[str]:
        """KEYS of a run-state script, in the order the prelude expects: the run's own, then its shard's queues."""
        k = self.keys
        shard = k.shard_for(run_id)
        return [
            k.run(run_id),
            k.ir(run_id),
            k.applied(run_id),
            k.nodes(run_id),
            k.ctx(run_id),
            k.join(run_id),
            k.events(run_id),
            shard.ledger,
            shard.run_deadlines,
            shard.delayed,
            shard.children,
            shard.ended_runs,
        ]

    async def run_script(
        self,
        name: str,
        run_id: str,
        *args: Any,
        client: aioredis.Redis | None = None,
        extra_keys: Sequence[str] = (),
    ) -> Any:
        """Call a run-state script for ``run_id``; ``client`` may be a pipeline; ``extra_keys`` follow the run's
        (and must be in its shard)."""
        argv = [self._templates[self.keys.shard_of(run_id)], *args]
        return await self._scripts[name](keys=[*self.run_keys(run_id), *extra_keys], args=argv, client=client)

    async def run_batch_script(self, name: str, shard: int, keys: list[str], *args: Any) -> Any:
        """Call a run-state script that handles several runs of ``shard``; ``keys`` holds each run's (see _lib.lua)."""
        return await self._scripts[name](keys=keys, args=[self._templates[shard], *args])

    async def apply_completions(self, batch: list[tuple[str, Decision, str]], max_agents: int) -> list[list[Any]]:
        """Apply decisions, one script call per shard; ``batch`` holds (run id, decision, graph JSON) triples.

        Returns ``[result, run status, has outputs]`` per decision, in order.
        """
        groups = by_shard(self.keys, batch, lambda item: item[0])
        replies = await asyncio.gather(
            *(
                self._apply_in_shard(shard, [batch[i] for i in positions], max_agents)
                for shard, positions in groups.items()
            )
        )
        results: list[list[Any]] = [[] for _ in batch]
        for positions, reply in zip(groups.values(), replies, strict=True):
            for position, result in zip(positions, reply, strict=True):
                results[position] = result
        return results

    async def _apply_in_shard(
        self, shard: int, batch: list[tuple[str, Decision, str]], max_agents: int
    ) -> list[list[Any]]:
        graphs: dict[str, int] = {}
        runs: dict[str, int] = {}
        keys: list[str] = []
        graph_of: list[int] = []
        run_of: list[int] = []
        for run_id, _, graph_json in batch:
            if run_id not in runs:
                # The first run brings the five keys every run of the shard shares; each further run only its seven.
                keys += self.run_keys(run_id)[: 7 if runs else None]
                runs[run_id] = len(runs)
            run_of.append(runs[run_id])
            graph_of.append(graphs.setdefault(graph_json, len(graphs) + 1))
        # Graphs are JSON already and each decision serialises itself: splice the texts into lists.
        decisions_json = "[" + ",".join(decision.for_lua() for _, decision, _ in batch) + "]"
        graphs_json = "[" + ",".join(graphs) + "]"
        argv = [self._templates[shard], max_agents, decisions_json, graphs_json]
        args = [*argv, json.dumps(graph_of), json.dumps(run_of)]
        result = await self._scripts["apply_completion"](keys=keys, args=args)
        return list(result)

    async def move_due(self, shard: int, batch: int) -> int:
        """Move due delayed tokens of ``shard`` to their task streams; returns how many moved."""
        result = await self._scripts["move_due"](
            keys=[self.keys.shard(shard).delayed], args=[self._tasks_templates[shard], batch]
        )
        return int(result)

    async def read_tokens(
        self, tokens: Sequence[tuple[str, str, list[str]]], run_fields: Sequence[str], ir_runs: Sequence[str]
    ) -> tuple[list[Any], list[Any]]:
        """For each (run id, node id, output node ids) the run's ``run_fields``, the node's state and the output
        refs, and the IR text of each run in ``ir_runs``: one call per shard."""
        groups = by_shard(self.keys, tokens, lambda token: token[0])
        ir_groups = by_shard(self.keys, ir_runs, lambda run_id: run_id)
        shards = sorted(groups.keys() | ir_groups.keys())
        replies = await asyncio.gather(
            *(
                self._read_in_shard(
                    [tokens[i] for i in groups.get(shard, [])],
                    run_fields,
                    [ir_runs[i] for i in ir_groups.get(shard, [])],
                )
                for shard in shards
            )
        )
        per_token: list[Any] = [None] * len(tokens)
        irs: list[Any] = [None] * len(ir_runs)
        for shard, reply in zip(shards, replies, strict=True):
            positions, ir_positions = groups.get(shard, []), ir_groups.get(shard, [])
            for position, value in zip(positions, reply[: len(positions)], strict=True):
                per_token[position] = value
            for position, value in zip(ir_positions, reply[len(positions) :], strict=True):
                irs[position] = value
        return per_token, irs

    async def _read_in_shard(
        self, tokens: Sequence[tuple[str, str, list[str]]], run_fields: Sequence[str], ir_runs: Sequence[str]
    ) -> list[Any]:
        keys: list[str] = []
        for run_id, _, _ in tokens:
            keys += [self.keys.run(run_id), self.keys.nodes(run_id), self.keys.ctx(run_id)]
        keys += [self.keys.ir(run_id) for run_id in ir_runs]
        asks = json.dumps([[node_id, needed] for _, node_id, needed in tokens])
        return list(await self._scripts["read_tokens"](keys=keys, args=[len(tokens), asks, *run_fields]))

    async def drain_signals(self, shard: int, inflight_key: str, batch: int) -> list[str]:
        """Move up to ``batch`` waiting signals of ``shard`` into ``inflight_key`` (of that shard); returns them."""
        signals = self.keys.shard(shard).completion_signals
        result = await self._scripts["drain_signals"](keys=[signals, inflight_key], args=[batch])
        return list(result)
