"""An in-process engine for integration tests: coordinators and workers as asyncio tasks on the real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.cas import Cas
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.retention import HotRetention
from common.runs.scripts import Scripts
from common.runs.start import RunStart, start_run
from common.tracing import Tracing
from common.workflow.compiler import compile_definition
from coordinator import Coordinator, Reconciler, Recorder
from tests.support.deployment import Deployment
from tests.support.eventually import eventually
from workers import NodeHandler, Worker
from workers.builtin import BuiltinHandler


class Engine:
    """Starts coordinators and workers in this event loop; submits runs and reads their state."""

    def __init__(
        self,
        deployment: Deployment,
        redis: aioredis.Redis,
        *,
        handlers: Sequence[NodeHandler] = (),
        pool: asyncpg.Pool | None = None,
        coordinators: int = 1,
        reconcile: bool = False,
        coordinator_tracing: Tracing | None = None,
        worker_tracing: Tracing | None = None,
    ) -> None:
        # Runs are compiled and started as the API would, under its agent limit.
        self.max_agents = deployment.api().max_agents
        self.redis = redis
        self.keys = Keys(deployment.key_prefix)
        self.scripts = Scripts(redis, self.keys)
        self.pool = pool
        cas = Cas(redis, self.keys, pool)
        coordinator_settings = deployment.coordinator()
        self.coordinators = [
            Coordinator(coordinator_settings, redis, cas=cas, tracing=coordinator_tracing) for _ in range(coordinators)
        ]
        self.worker = Worker(deployment.worker(), redis, [BuiltinHandler(), *handlers], cas=cas, tracing=worker_tracing)
        retention = HotRetention(redis, self.keys, coordinator_settings.hot_retention_s)
        self.recorder = Recorder(redis, pool, self.keys, "rec-test", retention=retention) if pool is not None else None
        self.reconciler = (
            Reconciler(coordinator_settings, redis, pool, cas=cas) if reconcile and pool is not None else None
        )
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        """The running components (coordinators, worker, recorder): none may end before the engine does."""
        return list(self._tasks)

    async def __aenter__(self) -> Engine:
        await self.worker.ensure_groups()
        self._tasks = [asyncio.create_task(c.run()) for c in self.coordinators]
        self._tasks.append(asyncio.create_task(self.worker.run()))
        if self.recorder is not None:
            self._tasks.append(asyncio.create_task(self.recorder.run()))
        if self.reconciler is not None:
            self._tasks.append(asyncio.create_task(self.reconciler.run()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for coordinator in self.coordinators:
            await coordinator.shutdown()
        await self.worker.shutdown()
        if self.recorder is not None:
            await self.recorder.shutdown()
        if self.reconciler is not None:
            await self.reconciler.shutdown()
        done, pending = await asyncio.wait(self._tasks, timeout=10)
        for task in pending:
            task.cancel()
        for task in done:
            if task.exception() is not None and exc == (None, None, None):
                raise task.exception()  # type: ignore[misc]

    async def submit(
        self,
        definition: dict[str, Any],
        inputs: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        started_by: str | None = None,
        recorded: bool = False,
        traceparent: str | None = None,
    ) -> str:
        """Compile ``definition`` and start a run of it; returns the run id. ``recorded`` first inserts its
        ``runs`` row with the definition, as the API does."""
        compiled = compile_definition(definition, max_agents=self.max_agents)
        ir = compiled.ir
        run_id = uuid.uuid4().hex
        if recorded:
            assert self.pool is not None, "a recorded run needs the engine's pool"
            await self.pool.execute(
                "INSERT INTO runs (id, tenant_id, workflow_id, workflow_name, version, status, inputs, started_by,"
                " definition) VALUES ($1, 'tenant-test', 'wf-test', $2, 1, 'queued', $3, $4, $5)",
                run_id,
                definition.get("name") or "test",
                inputs or {},
                started_by,
                compiled.definition.to_json(),
            )
        start = RunStart(
            run_id=run_id,
            tenant_id="tenant-test",
            workflow_id="wf-test",
            workflow_name=definition.get("name") or "test",
            version=1,
            inputs=inputs or {},
            timeout_s=timeout_s,
            started_by=started_by,
            traceparent=traceparent,
        )
        await start_run(self.scripts, start, ir, max_agents=self.max_agents)
        return run_id

    async def wait_ended(self, run_id: str, timeout_s: float = 15.0) -> str:
        """Wait until the run reaches a terminal status; returns it."""

        async def ended() -> str | None:
            status = await self.redis.hget(self.keys.run(run_id), "status")
            return status if status in TERMINAL_RUN_STATUSES else None

        return str(await eventually(ended, timeout_s))

    async def run_to_end(self, definition: dict[str, Any], inputs: dict[str, Any] | None = None) -> str:
        run_id = await self.submit(definition, inputs)
        await self.wait_ended(run_id)
        return run_id

    async def run_hash(self, run_id: str) -> dict[str, str]:
        return dict(await self.redis.hgetall(self.keys.run(run_id)))

    async def node_states(self, run_id: str) -> dict[str, dict[str, Any]]:
        raw = await self.redis.hgetall(self.keys.nodes(run_id))
        return {node_id: json.loads(state) for node_id, state in raw.items()}

    async def statuses(self, run_id: str) -> dict[str, str]:
        return {node_id: state["status"] for node_id, state in (await self.node_states(run_id)).items()}

    async def events(self, run_id: str) -> list[dict[str, Any]]:
        entries = await self.redis.xrange(self.keys.events(run_id))
        return [json.loads(fields["e"]) | {"id": entry_id} for entry_id, fields in entries]

    async def event_types(self, run_id: str, node_id: str | None = None) -> list[str]:
        return [e["type"] for e in await self.events(run_id) if node_id is None or e.get("node_id") == node_id]

    async def output(self, run_id: str, node_id: str) -> Any:
        ref = await self.redis.hget(self.keys.ctx(run_id), node_id)
        return None if ref is None else await Cas(self.redis, self.keys, self.pool).load_output(ref)


def chain(n: int, node_type: str = "noop") -> dict[str, Any]:
    """A linear workflow n0 -> n1 -> ... of ``node_type`` nodes."""
    nodes = [{"id": f"n{i}", "type": node_type, "config": {}} for i in range(n)]
    edges = [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(n - 1)]
    return {"name": f"chain-{n}", "nodes": nodes, "edges": edges}
