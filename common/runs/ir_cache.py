"""An in-process cache of run IRs, keyed by run and IR version.

Runs of one workflow version store the same IR text, so the parsed IR and what is derived from it (topology,
predecessors, which configs hold templates) are shared by every run with that text: a burst of runs of one
workflow parses its IR once per process, not once per run.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis

from common.keys import Keys
from common.workflow.ir import IR
from common.workflow.templates import has_templates, referenced_nodes

# Distinct IR texts kept parsed (workflow versions and patched IRs in use at once).
MAX_SHAPES = 512


class IrShape:
    """One parsed IR text and the facts derived from it, shared by every run that stores the same text."""

    def __init__(self, ir: IR) -> None:
        self.ir = ir
        self.topology_json = json.dumps(ir.topology())
        preds: dict[str, list[str]] = {node: [] for node in ir.nodes}
        for src, edges in ir.successors.items():
            for edge in edges:
                preds.setdefault(edge.to, []).append(src)
        self._predecessors = preds
        self._needed: dict[str, list[str]] = {}
        self._templated: dict[str, bool] = {}

    def predecessors(self, node_id: str) -> list[str]:
        """The nodes with an edge into ``node_id``, in IR order."""
        return self._predecessors.get(node_id, [])

    def needed_outputs(self, node_id: str) -> list[str]:
        """The nodes whose outputs ``node_id``'s handler may see: its predecessors and those its config names."""
        needed = self._needed.get(node_id)
        if needed is None:
            refs = referenced_nodes(self.ir.nodes[node_id].config)
            needed = self._needed[node_id] = sorted(set(self.predecessors(node_id)) | refs)
        return needed

    def templated(self, node_id: str) -> bool:
        """Whether ``node_id``'s config holds a template (or a secret reference); a plain one needs no rendering."""
        flag = self._templated.get(node_id)
        if flag is None:
            flag = self._templated[node_id] = has_templates(self.ir.nodes[node_id].config)
        return flag


@dataclass
class CachedIr:
    """One run's IR at one version (its shared ``shape``) and (lazily) the run inputs as of ``inputs_epoch``."""

    shape: IrShape
    inputs: dict[str, Any] | None = field(default=None)
    inputs_epoch: int = 0

    @property
    def ir(self) -> IR:
        return self.shape.ir

    @property
    def topology_json(self) -> str:
        return self.shape.topology_json

    @property
    def version(self) -> int:
        return self.shape.ir.version

    def predecessors(self, node_id: str) -> list[str]:
        """The nodes with an edge into ``node_id``, in IR order."""
        return self.shape.predecessors(node_id)


class IrCache:
    """Loads IRs from Redis once per (run, version); bounded LRU."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, max_entries: int = 10_000) -> None:
        self._redis = redis
        self._keys = keys
        self._max_entries = max_entries
        self._entries: OrderedDict[str, CachedIr] = OrderedDict()
        self._shapes: OrderedDict[str, IrShape] = OrderedDict()

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
        return self._store(run_id, raw)

    async def prefetch(self, run_ids: set[str]) -> None:
        """Load the IRs and inputs of every run not cached yet, in one round trip."""
        missing = [run_id for run_id in run_ids if run_id not in self._entries]
        if not missing:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for run_id in missing:
                pipe.get(self._keys.ir(run_id))
                pipe.hmget(self._keys.run(run_id), ["inputs", "epoch"])
            replies = await pipe.execute()
        for i, run_id in enumerate(missing):
            raw, (inputs, epoch) = replies[2 * i], replies[2 * i + 1]
            if raw is not None:
                entry = self._store(run_id, raw, orjson.loads(inputs) if inputs else {})
                entry.inputs_epoch = int(epoch or 0)

    def _shape(self, raw: str) -> IrShape:
        shape = self._shapes.get(raw)
        if shape is None:
            shape = self._shapes[raw] = IrShape(IR.model_validate_json(raw))
            if len(self._shapes) > MAX_SHAPES:
                self._shapes.popitem(last=False)
        else:
            self._shapes.move_to_end(raw)
        return shape

    def _store(self, run_id: str, raw: str, inputs: dict[str, Any] | None = None) -> CachedIr:
        entry = CachedIr(shape=self._shape(raw), inputs=inputs)
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
        return self._store(run_id, raw)

    async def inputs(self, run_id: str, entry: CachedIr, epoch: int = 0) -> dict[str, Any]:
        """The run's inputs as of ``epoch``: fixed within an epoch (only a resume replaces them), so cached beside
        the IR and read again for a newer epoch."""
        if entry.inputs is None or epoch > entry.inputs_epoch:
            raw, current = await self._redis.hmget(self._keys.run(run_id), ["inputs", "epoch"])
            entry.inputs = orjson.loads(raw) if raw else {}
            entry.inputs_epoch = int(current or 0)
        return entry.inputs

    def forget(self, run_id: str) -> None:
        """Evict a finished run."""
        self._entries.pop(run_id, None)
