"""An in-process cache of run IRs, keyed by run and IR version."""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from common.keys import Keys
from common.workflow.ir import IR


@dataclass
class CachedIr:
    """One run's IR at one version, with its serialised topology and (lazily) the run inputs."""

    ir: IR
    topology_json: str
    inputs: dict[str, Any] | None = field(default=None)
    _predecessors: dict[str, list[str]] | None = field(default=None, repr=False)

    @property
    def version(self) -> int:
        return self.ir.version

    def predecessors(self, node_id: str) -> list[str]:
        """The nodes with an edge into ``node_id``, in IR order."""
        if self._predecessors is None:
            preds: dict[str, list[str]] = {node: [] for node in self.ir.nodes}
            for src, edges in self.ir.successors.items():
                for edge in edges:
                    preds.setdefault(edge.to, []).append(src)
            self._predecessors = preds
        return self._predecessors.get(node_id, [])


class IrCache:
    """Loads IRs from Redis once per (run, version); bounded LRU."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, max_entries: int = 10_000) -> None:
        self._redis = redis
        self._keys = keys
        self._max_entries = max_entries
        self._entries: OrderedDict[str, CachedIr] = OrderedDict()

    async def get(self, run_id: str, min_version: int = 0) -> CachedIr | None:
        """The cached IR of ``run_id`` at ``min_version`` or later, loading it when needed; ``None`` if absent."""
        entry = self._entries.get(run_id)
        if entry is not None and entry.version >= min_version:
            self._entries.move_to_end(run_id)
            return entry
        return await self.reload(run_id)

    def peek(self, run_id: str) -> CachedIr | None:
        """What is cached for ``run_id``, without loading."""
        return self._entries.get(run_id)

    def store_json(self, run_id: str, raw: str) -> CachedIr:
        """Cache an IR read by the caller (in its own pipeline)."""
        return self._store(run_id, IR.model_validate_json(raw))

    async def prefetch(self, run_ids: set[str]) -> None:
        """Load the IRs and inputs of every run not cached yet, in one round trip."""
        missing = [run_id for run_id in run_ids if run_id not in self._entries]
        if not missing:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in missing:
                pipe.get(self._keys.ir(run_id))
                pipe.hget(self._keys.run(run_id), "inputs")
            replies = await pipe.execute()
        for i, run_id in enumerate(missing):
            raw, inputs = replies[2 * i], replies[2 * i + 1]
            if raw is not None:
                self._store(run_id, IR.model_validate_json(raw), json.loads(inputs) if inputs else {})

    def _store(self, run_id: str, ir: IR, inputs: dict[str, Any] | None = None) -> CachedIr:
        entry = CachedIr(ir=ir, topology_json=json.dumps(ir.topology()), inputs=inputs)
        self._entries[run_id] = entry
        if len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return entry

    async def reload(self, run_id: str) -> CachedIr | None:
        """Drop what is cached for ``run_id`` and load its current IR."""
        self._entries.pop(run_id, None)
        raw = await self._redis.get(self._keys.ir(run_id))
        if raw is None:
            return None
        return self._store(run_id, IR.model_validate_json(raw))

    async def inputs(self, run_id: str, entry: CachedIr) -> dict[str, Any]:
        """The run's inputs (immutable, so cached beside the IR)."""
        if entry.inputs is None:
            raw = await self._redis.hget(self._keys.run(run_id), "inputs")
            entry.inputs = json.loads(raw) if raw else {}
        return entry.inputs

    def forget(self, run_id: str) -> None:
        """Evict a finished run."""
        self._entries.pop(run_id, None)
