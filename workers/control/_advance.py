"""Moving a control node forward from its state: start the children it is due, decide it, complete it.

Every step is idempotent, so whoever holds a reason to look (the handler, a child's end, the sweeper) just
calls ``advance``; repeating it after a crash, or running it twice at once, changes nothing twice.

Each child is admitted (``common.runs.admission``) just before it starts, like a run submitted through the API:
it takes a slot of the tenant's active runs and counts against its starter's submission tier. A child refused
stays claimed and is tried again at the next advance while the node has another child running (that one's end
frees what it held, so waiting cannot deadlock); with none running, the node waits ``child_admission_wait_s``
and then fails with ``quota_exceeded``, so a parent holding the tenant's last slot never waits for ever.

A node whose run was rebuilt from Postgres after Redis lost it runs again with the same token, so its children
keep their ids: one that already ended is counted from its hash or, gone from Redis, from its ``runs`` row,
never started again.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from common.errors import TemplateError
from common.json_schema import InvalidSchema, instance_errors
from common.keys import Keys
from common.runs.admission import Admission, Verdict
from common.runs.cancel import cancel_run
from common.runs.cas import Cas
from common.runs.clock import redis_now_ms
from common.runs.messages import TERMINAL_RUN_STATUSES, ChildRunEnded, CompletionSignal, NodeError
from common.runs.scripts import Scripts, now_ms
from common.runs.start import RunStart, start_run
from common.settings import WorkerSettings
from common.workflow.ir import IR
from common.workflow.node_configs import LoopConfig, MapConfig
from common.workflow.templates import TemplateScope, evaluate_condition, render_value
from workers.control._state import ControlState, ControlStore, Outcome

logger = logging.getLogger(__name__)


class _Refused(Exception):
    """A child cannot be started (its inputs do not render or do not fit the body); the node fails."""

    def __init__(self, error: NodeError) -> None:
        super().__init__(error.message)
        self.error = error


def child_error(end: ChildRunEnded, what: str) -> NodeError:
    """The node error for a child run that did not succeed."""
    message = (end.error or {}).get("message") or "no error given"
    return NodeError(type="child_failed", message=f"{what} (run {end.run_id}) {end.status}: {message}")


class Advancer:
    """Drives control nodes; shared by the handler, the ``wf.children`` consumer and the sweeper."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        store: ControlStore,
        cas: Cas,
        settings: WorkerSettings,
        *,
        pool: asyncpg.Pool | None = None,
        traced: bool = False,
    ) -> None:
        self._redis = redis
        self._pool = pool
        # With tracing on, child runs join their parent run's trace.
        self._traced = traced
        self._keys = keys
        self._store = store
        self._cas = cas
        self._settings = settings
        self._scripts = Scripts(redis, keys)
        self._admission = Admission(redis, keys, settings)

    async def advance(self, run_id: str, node_id: str) -> None:
        """Bring the node's children and outcome up to date with its state."""
        state = await self._store.load(run_id, node_id)
        if state is None:
            await self._store.forget(run_id, node_id)
            return
        if state.outcome is None:
            status = await self._redis.hget(self._keys.run(run_id), "status")
            if status is None or status in TERMINAL_RUN_STATUSES:
                await self._cancel_children(state, f"parent run {run_id} {status or 'expired'}")
                await self._store.forget(run_id, node_id)
                return
            outcome = await self._step(state)
            if outcome is None:
                return
            await self._store.decide(state, outcome)
            state = await self._store.load(run_id, node_id)
            if state is None or state.outcome is None:
                return
        await self._finish(state)

    async def _step(self, state: ControlState) -> Outcome | None:
        """The node's outcome when it is decided, else start what is due and return None."""
        deadline = state.meta.deadline_ms
        if deadline is not None and await redis_now_ms(self._redis) >= deadline:
            timeout_s = (deadline - state.meta.started_at_ms) / 1000
            return _failed(NodeError(type="timeout", message=f"timeout after {timeout_s:g}s"))
        try:
            if state.meta.kind == "map":
                return await self._step_map(state)
            if state.meta.kind == "loop":
                return await self._step_loop(state)
            return await self._step_workflow(state)
        except _Refused as refused:
            return _failed(refused.error)

    async def _step_workflow(self, state: ControlState) -> Outcome | None:
        if state.ndone:
            (end,) = await self._store.ends(state, [0])
            if end is None:
                return None
            if end.status != "succeeded":
                return _failed(child_error(end, "child run"))
            return Outcome(status="succeeded", output=end.outputs)
        await self._start(state, await self._store.claim(state, 1, 1))
        return None

    async def _step_map(self, state: ControlState) -> Outcome | None:
        config = MapConfig.model_validate(state.meta.config)
        total = state.meta.total
        if state.nfailed and config.on_item_failure == "fail":
            ends = await self._store.ends(state, list(range(state.next)))
            for index, end in enumerate(ends):
                if end is not None and end.status != "succeeded":
                    return _failed(child_error(end, f"item {index}"))
        if state.ndone >= total:
            ends = await self._store.ends(state, list(range(total)))
            results = [e.outputs if e is not None and e.status == "succeeded" else None for e in ends]
            errors = [
                {"index": i, "run_id": e.run_id, "error": child_error(e, f"item {i}").model_dump()}
                for i, e in enumerate(ends)
                if e is not None and e.status != "succeeded"
            ]
            return Outcome(status="succeeded", output={"results": results, "errors": errors})
        concurrency = min(config.concurrency, self._settings.max_map_concurrency)
        await self._start(state, await self._store.claim(state, total, concurrency))
        return None

    async def _step_loop(self, state: ControlState) -> Outcome | None:
        config = LoopConfig.model_validate(state.meta.config)
        last = state.next - 1
        if last < 0:
            await self._start(state, await self._store.claim(state, 1, 1, expected_next=0))
            return None
        (end,) = await self._store.ends(state, [last])
        if end is None:
            await self._start(state, [])
            return None
        if end.status != "succeeded":
            return _failed(child_error(end, f"iteration {last}"))
        scope = self._scope(state, {"loop": {"index": last, "previous": end.outputs}})
        try:
            done = evaluate_condition(config.until, end.outputs, scope)
        except TemplateError as exc:
            return _failed(NodeError(type="condition_error", message=f"config.until: {exc.message}", retryable=False))
        result = {"output": end.outputs, "iterations": last + 1}
        if done:
            return Outcome(status="succeeded", output=result)
        max_iterations = min(config.max_iterations, self._settings.max_loop_iterations)
        if last + 1 >= max_iterations:
            if config.on_max == "succeed":
                return Outcome(status="succeeded", output=result)
            message = f"config.until still false after max_iterations ({max_iterations}) iterations"
            return _failed(NodeError(type="max_iterations", message=message, retryable=False))
        await self._start(state, await self._store.claim(state, last + 2, 1, expected_next=last + 1))
        return None

    async def _start(self, state: ControlState, claimed: list[int]) -> None:
        """Start the children just claimed and any claimed earlier that a crash left unstarted; count those that
        already ended (the sweeper then moves the node on)."""
        indexes = sorted(set(claimed) | set(state.inflight))
        if not indexes:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for index in indexes:
                pipe.hmget(self._keys.run(state.child_id(index)), ["status", "outputs", "error"])
            pipe.hget(self._keys.run(state.run_id), "rebuilt_ms")
            *children, rebuilt = await pipe.execute()
        missing = []
        running = False
        for index, (status, outputs, error) in zip(indexes, children, strict=True):
            running = running or (status is not None and status not in TERMINAL_RUN_STATUSES)
            if status is None:
                missing.append(index)
            elif status in TERMINAL_RUN_STATUSES and (status != "succeeded" or outputs is not None):
                end = ChildRunEnded(
                    run_id=state.child_id(index),
                    parent_run_id=state.run_id,
                    parent_node_id=state.node_id,
                    status=status,
                    outputs=json.loads(outputs) if outputs is not None else None,
                    error=json.loads(error) if error is not None else None,
                )
                await self._store.record_end(state.run_id, state.node_id, end)
        if rebuilt is not None:
            missing = await self._count_recorded_ends(state, missing)
        if not missing:
            return
        ir = await self._store.ir(state)
        items = await self._store.items(state) if state.meta.kind == "map" else []
        traceparent = await self._redis.hget(self._keys.run(state.run_id), "traceparent") if self._traced else None
        for index in missing:
            inputs = await self._child_inputs(state, ir, items, index)
            meta = state.meta
            verdict = await self._admission.admit_run(
                meta.tenant_id, state.child_id(index), agent_count=ir.agent_count, started_by=meta.started_by
            )
            if not verdict.allowed:
                await self._wait_for_admission(state, verdict, others_running=running)
                break
            start = RunStart(
                run_id=state.child_id(index),
                tenant_id=meta.tenant_id,
                workflow_id=meta.body.workflow_id,
                workflow_name=meta.body.workflow_name,
                version=meta.body.version,
                inputs=inputs,
                started_by=meta.started_by,
                parent_run_id=state.run_id,
                parent_node_id=state.node_id,
                traceparent=traceparent,
            )
            await start_run(self._scripts, start, ir, max_agents=self._settings.max_agents)
            logger.info("run %s node %s started child %s (index %d)", state.run_id, state.node_id, start.run_id, index)
            running = True
        if running:
            await self._store.stop_waiting(state)
        # A parent cancelled while these started may have missed them: its cascade read the set before.
        status = await self._redis.hget(self._keys.run(state.run_id), "status")
        if status is None or status in TERMINAL_RUN_STATUSES:
            await self._cancel_children(state, f"parent run {state.run_id} {status or 'expired'}")

    async def _wait_for_admission(self, state: ControlState, verdict: Verdict, *, others_running: bool) -> None:
        """Leave a refused child claimed for a later advance; raise ``_Refused`` (quota_exceeded) once the node
        waited ``child_admission_wait_s`` with no other child running."""
        if others_running:
            return
        now = int(await redis_now_ms(self._redis))
        since = await self._store.waiting_since(state, now)
        if since == now:
            logger.info("run %s node %s: a child waits for %s", state.run_id, state.node_id, verdict.refused_by)
        waited_s = (now - since) / 1000
        limit_s = self._settings.child_admission_wait_s
        if waited_s >= limit_s:
            message = (
                f"child run not admitted: {verdict.refusal(self._admission.window_s)}; waited {waited_s:g} s"
                f" (AOB_CHILD_ADMISSION_WAIT_S = {limit_s:g}) with no other child of this node running"
            )
            raise _Refused(NodeError(type="quota_exceeded", message=message, retryable=False))

    async def _count_recorded_ends(self, state: ControlState, indexes: list[int]) -> list[int]:
        """Count the children at ``indexes`` that Postgres holds as ended (Redis lost them with the parent's
        control state); returns the others."""
        if self._pool is None or not indexes:
            return indexes
        ids = {state.child_id(index): index for index in indexes}
        rows = await self._pool.fetch(
            "SELECT id, status, outputs, error FROM runs WHERE id = ANY($1::text[])"
            " AND status IN ('succeeded', 'failed', 'cancelled', 'timed_out')",
            list(ids),
        )
        for row in rows:
            end = ChildRunEnded(
                run_id=row["id"],
                parent_run_id=state.run_id,
                parent_node_id=state.node_id,
                status=row["status"],
                outputs=row["outputs"],
                error=row["error"],
            )
            await self._store.record_end(state.run_id, state.node_id, end)
            logger.info(
                "run %s node %s: child %s ended (%s) before Redis lost it", state.run_id, state.node_id, row[0], row[1]
            )
        ended = {row["id"] for row in rows}
        return [index for child_id, index in ids.items() if child_id not in ended]

    async def _child_inputs(self, state: ControlState, ir: IR, items: list[Any], index: int) -> dict[str, Any]:
        kind = state.meta.kind
        if kind == "map":
            extra: dict[str, Any] = {"item": items[index], "index": index}
        elif kind == "loop":
            previous = None
            if index > 0:
                (end,) = await self._store.ends(state, [index - 1])
                previous = end.outputs if end is not None else None
            extra = {"loop": {"index": index, "previous": previous}}
        else:
            extra = {}
        try:
            inputs = render_value(state.meta.config.get("inputs") or {}, self._scope(state, extra))
        except TemplateError as exc:
            raise _Refused(
                NodeError(type="template_error", message=f"config.inputs: {exc.message}", retryable=False)
            ) from None
        if not isinstance(inputs, dict):
            message = f"config.inputs: expected an object, got {type(inputs).__name__}"
            raise _Refused(NodeError(type="invalid_inputs", message=message, retryable=False))
        if ir.inputs_schema:
            try:
                problems = instance_errors(ir.inputs_schema, inputs)
            except InvalidSchema as exc:
                message = f"child {index}: the body's inputs schema cannot be used: {exc.message}"
                raise _Refused(NodeError(type="invalid_inputs", message=message, retryable=False)) from None
            if problems:
                listed = "; ".join(f"{p.at('inputs')}: {p.message}" for p in problems)
                message = f"child {index}: inputs do not fit the body's inputs schema: {listed}"
                raise _Refused(NodeError(type="invalid_inputs", message=message, retryable=False))
        return inputs

    def _scope(self, state: ControlState, extra: dict[str, Any]) -> TemplateScope:
        return TemplateScope(inputs=state.meta.inputs, nodes=state.meta.upstream, extra=extra, limits=self._settings)

    async def _cancel_children(self, state: ControlState, reason: str) -> None:
        for index in state.inflight:
            verdict = await cancel_run(self._scripts, state.child_id(index), reason=reason)
            if verdict == "ok":
                logger.info("cancelled child %s of run %s: %s", state.child_id(index), state.run_id, reason)

    async def _finish(self, state: ControlState) -> None:
        """Cancel children still running and push the node's completion (once, give or take a crash)."""
        outcome = state.outcome
        if outcome is None:
            return
        await self._cancel_children(state, f"node {state.node_id} of run {state.run_id} {outcome.status}")
        if state.signalled:
            return
        token, started_at_ms = state.meta.token, state.meta.started_at_ms
        if outcome.status == "succeeded":
            output_ref = await self._cas.store_output(outcome.output, self._settings.inline_output_max_bytes)
            signal = CompletionSignal.succeeded(token, output_ref, started_at_ms=started_at_ms, ended_at_ms=now_ms())
        else:
            signal = CompletionSignal.failed(token, outcome.error, started_at_ms=started_at_ms, ended_at_ms=now_ms())
        # The coordinator applies a token once, so a push repeated after a crash here is dropped as a duplicate.
        await self._redis.rpush(
            self._keys.shard_for(token.run_id).completion_signals, signal.model_dump_json(exclude_none=True)
        )
        await self._store.mark_signalled(state)
        logger.info("run %s node %s %s", state.run_id, state.node_id, outcome.status)


def _failed(error: NodeError) -> Outcome:
    return Outcome(status="failed", error=error)
