"""Rebuilding the hot state of a run Postgres holds as live after Redis lost it (its run hash is gone).

Node states come from each node's latest recorded attempt, outputs from their refs, joins are counted afresh from
the ended nodes, and nodes that were queued or running are queued again with the same attempt: at-least-once, an
attempt in flight at the loss may run twice. Pending approvals stay pending; control nodes are queued again (their
worker-side state is not in Postgres) and find their children by their fixed ids.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from common.errors import AobError, TemplateError, ValidationFailed
from common.runs.admission import count_active
from common.runs.approval_store import ApprovalRow, run_approvals
from common.runs.approvals import completion_for
from common.runs.cas import Cas
from common.runs.messages import CompletionSignal
from common.runs.patch_intents import patch_lock, settle_intents_at
from common.runs.records import RunRecord, StepRecord, child_run_ids, epoch_ms, load_run, load_steps
from common.runs.scripts import Scripts, now_ms
from common.workflow.compiler import compile_definition
from common.workflow.edges import edge_live
from common.workflow.ir import IR, IrNode, task_stream_type
from common.workflow.templates import TemplateScope

logger = logging.getLogger(__name__)

ENDED_NODE = frozenset({"succeeded", "failed", "skipped", "cancelled"})


@dataclass(frozen=True)
class RebuildOutcome:
    """``result``: ``rebuilt``; ``exists`` (Redis holds the run); ``ended``, ``missing`` or ``not_started``
    (Postgres holds no started live run); ``unrecoverable`` (``detail`` says why). ``queued``: nodes queued by the
    rebuild; ``waiting``: nodes left waiting for an approval."""

    run_id: str
    result: str
    status: str | None = None
    queued: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    detail: str | None = None


@dataclass
class _Plan:
    """Everything the script restores, derived from the records."""

    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    ctx: dict[str, str] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    pending: set[str] = field(default_factory=set)
    edges: list[tuple[str, bool]] = field(default_factory=list)
    requeue: list[tuple[str, int, str, float]] = field(default_factory=list)
    timeouts: list[tuple[float, str]] = field(default_factory=list)
    completions: list[CompletionSignal] = field(default_factory=list)


async def rebuild_run(
    scripts: Scripts, pool: asyncpg.Pool, cas: Cas, run_id: str, *, max_agents: int
) -> RebuildOutcome:
    """Recreate ``run_id``'s hot state from Postgres unless Redis holds it; see ``RebuildOutcome``."""
    if await scripts.redis.exists(scripts.keys.run(run_id)):
        return RebuildOutcome(run_id, "exists")
    # Under the patch lock no patch of the run is half done while its definition is read.
    async with pool.acquire() as conn, patch_lock(conn, run_id):
        async with conn.transaction():
            record = await load_run(conn, run_id)
            if record is not None and not record.ended:
                # A patch swapped in (its version recorded) but not confirmed before the loss is confirmed now.
                await settle_intents_at(conn, run_id, record.ir_version)
                record = await load_run(conn, run_id)
        if record is None:
            return RebuildOutcome(run_id, "missing")
        if record.ended or record.status == "queued":
            return RebuildOutcome(run_id, "ended" if record.ended else "not_started", record.status)
        try:
            ir = _ir(record, max_agents)
        except AobError as exc:
            logger.error("run %s cannot be rebuilt: %s", run_id, exc.message)
            return RebuildOutcome(run_id, "unrecoverable", record.status, detail=exc.message)
        steps = await load_steps(conn, run_id)
        plan = await _plan(record, ir, steps, await run_approvals(conn, run_id), cas)
        result = await scripts.run_script(
            "rebuild_run",
            run_id,
            json.dumps(_run_fields(record, ir, steps, plan)),
            ir.model_dump_json(),
            json.dumps(ir.topology()),
            json.dumps(plan.states),
            json.dumps(plan.ctx),
            json.dumps(plan.applied),
            json.dumps(sorted(set(ir.nodes) - plan.pending)),
            json.dumps(plan.edges),
            json.dumps([node_id for node_id in ir.entries if node_id in plan.pending]),
            json.dumps(plan.requeue),
            json.dumps(plan.timeouts),
            json.dumps(await child_run_ids(conn, run_id)),
            max_agents,
            extra_keys=[scripts.keys.child_runs(run_id)],
        )
    verdict, status, queued = str(result[0]), str(result[1]), json.loads(result[2]) or []
    if verdict != "rebuilt":
        return RebuildOutcome(run_id, verdict, status)
    await count_active(scripts.redis, scripts.keys, run_id)
    if plan.completions:
        # Approvals decided while Redis had no run: their completion (pushed then, or lost) is pushed again.
        signals = [signal.model_dump_json(exclude_none=True) for signal in plan.completions]
        await scripts.redis.rpush(scripts.keys.shard_for(run_id).completion_signals, *signals)
    waiting = sorted(node_id for node_id, state in plan.states.items() if state["status"] == "waiting")
    logger.warning("run %s rebuilt from Postgres (%s): queued %s", run_id, status, ", ".join(queued) or "nothing")
    return RebuildOutcome(run_id, verdict, status, queued=list(queued), waiting=waiting)


def _ir(record: RunRecord, max_agents: int) -> IR:
    """The run's current IR: its (patched) definition compiled, or the IR a child run was started with."""
    if record.definition is not None:
        try:
            name = record.workflow_name
            return compile_definition(
                record.definition, max_agents=max_agents, version=record.definition_version, name=name
            ).ir
        except ValidationFailed as exc:
            raise AobError(f"its definition no longer compiles: {exc.message}") from None
    if record.ir is not None:
        return IR.model_validate(record.ir)
    raise AobError("Postgres holds neither its definition nor its IR (a child run started before migration 006)")


def _latest_steps(record: RunRecord, ir: IR, steps: list[StepRecord]) -> tuple[dict[str, StepRecord], dict[str, int]]:
    """Each node's latest attempt that still counts (a node the latest resume reset counts only this epoch's),
    and each node's last attempt number (attempts keep counting across resumes)."""
    reset = set(record.reset_nodes or ())
    latest: dict[str, StepRecord] = {}
    attempts: dict[str, int] = {}
    for step in steps:
        if step.node_id not in ir.nodes:
            continue
        attempts[step.node_id] = max(attempts.get(step.node_id, 0), step.attempt)
        if step.node_id in reset and (step.epoch is None or step.epoch < record.epoch):
            continue
        if step.node_id not in latest or step.attempt > latest[step.node_id].attempt:
            latest[step.node_id] = step
    return latest, attempts


def _state(step: StepRecord, node: IrNode) -> dict[str, Any]:
    """The node state as the scripts keep it (nulls left out: Lua reads JSON null as a truthy value)."""
    state: dict[str, Any] = {
        "status": step.status,
        "attempt": step.attempt,
        "queued_at": epoch_ms(step.queued_at),
        "started_at": epoch_ms(step.started_at),
        "ended_at": epoch_ms(step.ended_at),
        "queue_ms": step.queue_ms,
        "exec_ms": step.exec_ms,
        "worker_id": step.worker_id,
        "output_ref": step.output_ref,
        "error": step.error,
        "branch": step.branch,
    }
    if step.status == "skipped":
        state["reason"] = "dead path" if node.known else "unknown node type"
    return {k: v for k, v in state.items() if v is not None}


def _was_retried(node: IrNode, step: StepRecord) -> bool:
    """Whether a failed attempt was one the coordinator retries (as ``decide`` does): its next one went unrecorded."""
    error = step.error or {}
    return step.status == "failed" and bool(error.get("retryable", True)) and step.attempt < node.retry.max_attempts


async def _plan(record: RunRecord, ir: IR, steps: list[StepRecord], approvals: list[ApprovalRow], cas: Cas) -> _Plan:
    plan = _Plan()
    latest, attempts = _latest_steps(record, ir, steps)
    by_token = {row.token_id: row for row in approvals}
    ended: dict[str, StepRecord] = {}
    for node_id, node in ir.nodes.items():
        step = latest.get(node_id)
        if step is None:
            plan.pending.add(node_id)
            if node_id in attempts:
                # Reset by a resume: pending, its next attempt numbered after the last, as resume_run left it.
                plan.states[node_id] = {"status": "pending", "attempt": attempts[node_id]}
            continue
        token_id = f"{record.epoch if step.epoch is None else step.epoch}:{node_id}:{step.attempt}"
        stream = task_stream_type(node.type)
        if step.status in ("queued", "running"):
            # A queued delay or retry keeps its due time (queued_at); anything else goes at once.
            due = (epoch_ms(step.queued_at) or 0.0) if step.status == "queued" else 0.0
            plan.requeue.append((node_id, step.attempt, stream, due))
        elif step.status == "waiting":
            _plan_waiting(plan, node_id, step, _state(step, node), by_token.get(token_id), stream)
        elif _was_retried(node, step):
            due = (epoch_ms(step.ended_at) or now_ms()) + node.retry.delay_s(step.attempt) * 1000
            plan.requeue.append((node_id, step.attempt + 1, stream, due))
        else:
            plan.states[node_id] = _state(step, node)
            ended[node_id] = step
            if step.status == "succeeded" and step.output_ref is not None:
                plan.ctx[node_id] = step.output_ref
    # Every applied completion, of every attempt: a replayed one (a retried attempt's, say) must stay a duplicate.
    plan.applied = [
        f"{record.epoch if step.epoch is None else step.epoch}:{step.node_id}:{step.attempt}"
        for step in steps
        if step.status in ("succeeded", "failed")
    ]
    plan.edges = await _edges_into_pending(record, ir, ended, plan.pending, cas)
    return plan


def _plan_waiting(
    plan: _Plan, node_id: str, step: StepRecord, state: dict[str, Any], approval: ApprovalRow | None, stream: str
) -> None:
    """A hitl node waiting for its approval keeps waiting (decided meanwhile: its completion is pushed again)."""
    if approval is None:
        # Its approval was never opened: the hitl worker opens it when the token comes again.
        plan.requeue.append((node_id, step.attempt, stream, 0.0))
    elif approval.approval.status in ("pending", "approved", "rejected"):
        plan.states[node_id] = state | {"approval_id": approval.id}
        if approval.approval.status != "pending":
            plan.completions.append(completion_for(approval))
        elif approval.timeout_token and approval.approval.expires_at is not None:
            # Due as the hitl worker scheduled it.
            plan.timeouts.append((int(approval.approval.expires_at.timestamp() * 1000), approval.timeout_token))
    else:
        # Cancelled or expired while the run lives on: asked again, as the next attempt (a new approval).
        plan.requeue.append((node_id, step.attempt + 1, stream, 0.0))


async def _edges_into_pending(
    record: RunRecord, ir: IR, ended: dict[str, StepRecord], pending: set[str], cas: Cas
) -> list[tuple[str, bool]]:
    """``(target, live)`` of every edge from an ended node into a pending one, decided as ``decide`` decided it."""
    scope = TemplateScope(inputs=record.inputs, nodes={})
    edges: list[tuple[str, bool]] = []
    for source, step in ended.items():
        out = [edge for edge in ir.successors.get(source, []) if edge.to in pending]
        if not out:
            continue
        output: Any = None
        if step.status == "succeeded" and step.output_ref is not None and any(edge.when for edge in out):
            output = await cas.load_output(step.output_ref)
        for edge in out:
            if step.status == "succeeded":
                try:
                    live = edge_live(edge, step.branch, output, scope)
                except TemplateError:
                    # decide() fails a node whose condition errors, so a succeeded one never did: dead, as in patches.
                    live = False
            elif step.status == "failed":
                live = edge.on_failure
            elif step.status == "skipped":
                live = not ir.nodes[source].known and not edge.on_failure
            else:
                live = False
            edges.append((edge.to, live))
    return edges


def _run_fields(record: RunRecord, ir: IR, steps: list[StepRecord], plan: _Plan) -> dict[str, str]:
    """The run hash as ``start_run`` wrote it, with the epoch, deadline and ledger numbering it reached."""
    fired_agents = sum(1 for node_id, node in ir.nodes.items() if node.type == "agent" and node_id not in plan.pending)
    fields: dict[str, Any] = {
        "run_id": record.id,
        "tenant": record.tenant_id,
        "workflow_id": record.workflow_id,
        "workflow_name": record.workflow_name,
        "version": record.version,
        "ir_version": ir.version,
        "inputs": json.dumps(record.inputs),
        "started_by": record.started_by,
        "parent_run_id": record.parent_run_id,
        "parent_node_id": record.parent_node_id,
        "traceparent": record.traceparent,
        "epoch": record.epoch,
        "started_ms": epoch_ms(record.started_at) or now_ms(),
        "agents_started": fired_agents,
        "deadline_ms": epoch_ms(record.deadline_at),
    }
    seq = max([record.ledger_seq, *(step.ledger_seq for step in steps)])
    if seq:
        fields["ledger_seq"] = seq
    return {k: _text(v) for k, v in fields.items() if v is not None}


def _text(value: Any) -> str:
    """A hash field as the scripts write numbers: whole ones without a fraction."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
