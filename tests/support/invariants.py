"""Engine invariants as checks that return what they found wrong, so a test can assert on them and a test of the
checker can plant a violation and see it reported.

Each violation names its check, so a property test can hold every check but those of a known open bug.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from common.runs.messages import TERMINAL_RUN_STATUSES
from common.workflow.ir import IR
from tests.support.engine import Engine
from tests.support.executions import Execution
from tests.support.shards import delayed_members, signals_waiting, task_entries

FINAL_EVENTS = frozenset({"node_succeeded", "node_failed", "node_skipped"})
FINAL_NODE_STATUSES = frozenset({"succeeded", "failed", "skipped", "cancelled"})
IN_FLIGHT_NODE_STATUSES = frozenset({"queued", "running", "waiting"})
# Every check these functions make, by the name its violations carry.
CHECKS = frozenset(
    {
        "run_ended",
        "one_final_event_per_epoch",
        "succeeded_run_complete",
        "succeeded_run_not_cancelled",
        "succeeded_run_failures_handled",
        "events_match_states",
        "outputs_kept",
        "counter_matches_in_flight",
        "nothing_in_flight_after_end",
        "no_engine_invariant_failure",
        "no_stale_epoch_execution",
        "token_executed_once",
        "delay_waited",
        "expected_outcome",
        "recorded_run",
        "recorded_run_error",
        "recorded_step",
        "recorded_steps_ended",
    }
)

# Checks a known open bug breaks, with the bug. The property and chaos tests hold every other check; each bug has
# an xfail test (test_engine_property_regressions.py, test_exactly_once.py) whose fix also removes its line here.
# Checks a known engine bug breaks, with why; empty while none is open (the fix of each removed its entry).
KNOWN_OPEN: dict[str, str] = {}


@dataclass(frozen=True)
class Violation:
    check: str
    run_id: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] run {self.run_id}: {self.detail}"


@dataclass(frozen=True)
class RunState:
    """One run's hot state, read once: its hash, node states and events."""

    run_id: str
    run: dict[str, str]
    nodes: dict[str, dict[str, Any]]
    events: list[dict[str, Any]]
    ir: IR
    outputs: dict[str, str]

    @property
    def status(self) -> str | None:
        return self.run.get("status")


async def read_run(engine: Engine, run_id: str) -> RunState:
    run, nodes, events = await engine.run_hash(run_id), await engine.node_states(run_id), await engine.events(run_id)
    ir = IR.model_validate_json(await engine.redis.get(engine.keys.ir(run_id)))
    outputs = await engine.redis.hgetall(engine.keys.ctx(run_id))
    return RunState(run_id, run, nodes, events, ir, outputs)


def events_match_states(state: RunState) -> list[Violation]:
    """A node's state agrees with its events: one that ended succeeded, failed or skipped last emitted that
    event; one that is pending or queued again has emitted no final event since the last resume."""
    last: dict[str, str] = {}
    since_resume: set[str] = set()
    for event in state.events:
        if event["type"] == "run_resumed":
            since_resume = set()
        elif event["type"] in FINAL_EVENTS:
            last[event["node_id"]] = event["type"].removeprefix("node_")
            since_resume.add(event["node_id"])
    found = []
    for node_id, node in sorted(state.nodes.items()):
        status = node["status"]
        if status in ("succeeded", "failed", "skipped") and last.get(node_id) != status:
            detail = f"node {node_id} is {status} but its last final event says {last.get(node_id)}"
            found.append(Violation("events_match_states", state.run_id, detail))
        elif status in ("pending", "queued") and node_id in since_resume:
            detail = f"node {node_id} is {status} but ended ({last[node_id]}) in this epoch"
            found.append(Violation("events_match_states", state.run_id, detail))
    return found


def outputs_kept(state: RunState) -> list[Violation]:
    """Every succeeded node's output is kept for its successors (and only succeeded nodes have one); a succeeded
    run's outputs are those of its succeeded terminal nodes (the workflows here have no output templates)."""
    found = []
    succeeded = {node_id for node_id, node in state.nodes.items() if node["status"] == "succeeded"}
    if set(state.outputs) != succeeded:
        detail = f"outputs kept for {sorted(state.outputs)}, succeeded nodes {sorted(succeeded)}"
        found.append(Violation("outputs_kept", state.run_id, detail))
    if state.status == "succeeded" and "outputs" in state.run:
        terminal = sorted(n for n in state.ir.nodes if not state.ir.successors.get(n) and n in succeeded)
        expected = {node_id: json.loads(state.outputs[node_id]) for node_id in terminal if node_id in state.outputs}
        if json.loads(state.run["outputs"]) != expected:
            detail = f"run outputs {state.run['outputs']}, succeeded terminal nodes' outputs {expected}"
            found.append(Violation("outputs_kept", state.run_id, detail))
    return found


def delays_waited(log: Iterable[Execution], delayed: set[str]) -> list[Violation]:
    """A delay node runs only after its token waited its time in the delayed set, in every life of the run."""
    return [
        Violation("delay_waited", e.run_id, f"delay node {e.node_id} ran token {e.token_id} without waiting")
        for e in log
        if e.node_type == "delay" and e.token_id not in delayed
    ]


async def counters(engine: Engine, run_ids: Iterable[str]) -> list[Violation]:
    """A running run's in-flight counter is the number of its current epoch's tokens not applied yet: in a task
    stream, waiting in the delayed set, or completed with a signal still to apply. The run ends when the
    counter reaches zero, so a counter too low ends it early and one too high never."""
    redis, keys = engine.redis, engine.keys
    tokens: list[dict[str, Any]] = []
    for node_type in ("builtin", "scripted"):
        tokens += [json.loads(fields["t"]) for _, fields in await task_entries(redis, keys, node_type)]
    tokens += [json.loads(body) for body in await delayed_members(redis, keys)]
    signals = [json.loads(raw) for raw in await signals_waiting(redis, keys)]
    found = []
    for run_id in run_ids:
        status, epoch, counter = await redis.hmget(keys.run(run_id), ["status", "epoch", "counter"])
        if status in TERMINAL_RUN_STATUSES:
            continue
        current = [t["token_id"] for t in tokens if t["run_id"] == run_id and t["token_id"].startswith(f"{epoch}:")]
        done = [s["token_id"] for s in signals if s["run_id"] == run_id and s["token_id"].startswith(f"{epoch}:")]
        applied = await redis.smembers(keys.applied(run_id))
        # A token already applied and delivered again (a redelivery) no longer counts.
        in_flight = sorted((set(current) | set(done)) - applied)
        if int(counter) != len(in_flight):
            detail = f"counter {counter} with {len(in_flight)} tokens in flight {in_flight}"
            found.append(Violation("counter_matches_in_flight", run_id, detail))
    return found


def final_events_per_epoch(state: RunState) -> list[Violation]:
    """A node reaches a final state (succeeded, failed, skipped) at most once per epoch, a resume starting an epoch;
    one that ran (succeeded or failed) was queued in that epoch first."""
    epoch = 0
    seen: Counter[tuple[int, str]] = Counter()
    queued: set[str] = set()
    found = []
    for event in state.events:
        if event["type"] == "run_resumed":
            epoch += 1
            queued = set()
        elif event["type"] == "node_queued":
            queued.add(event["node_id"])
        elif event["type"] in FINAL_EVENTS:
            seen[(epoch, event["node_id"])] += 1
            ran = event["type"] != "node_skipped" and event["data"].get("error", {}).get("type") != "spawn_limit"
            if ran and event["node_id"] not in queued:
                detail = f"node {event['node_id']} ended ({event['type']}) in epoch {epoch} without being queued"
                found.append(Violation("one_final_event_per_epoch", state.run_id, detail))
    return found + [
        Violation("one_final_event_per_epoch", state.run_id, f"node {node} ended {n} times in epoch {epoch}")
        for (epoch, node), n in sorted(seen.items())
        if n > 1
    ]


def ended_run(state: RunState) -> list[Violation]:
    """Once nothing is left to do, the run has ended; a succeeded run left no node unfinished, none cancelled
    (it never produced its output) and no failure unhandled (a failed node without a ``when: failed`` edge); the
    engine's own guard (a run failed with ``engine_invariant``) never fired."""
    if state.status not in TERMINAL_RUN_STATUSES:
        return [Violation("run_ended", state.run_id, f"status {state.status!r} with nothing left to do")]
    found = []
    if state.status == "succeeded":
        statuses = {node_id: state.nodes.get(node_id, {}).get("status", "pending") for node_id in state.ir.nodes}
        unfinished = {node_id: s for node_id, s in statuses.items() if s not in FINAL_NODE_STATUSES}
        if unfinished:
            found.append(Violation("succeeded_run_complete", state.run_id, f"unfinished nodes {unfinished}"))
        cancelled = sorted(node_id for node_id, s in statuses.items() if s == "cancelled")
        unhandled = sorted(
            node_id
            for node_id, s in statuses.items()
            if s == "failed" and not any(e.on_failure for e in state.ir.successors.get(node_id, []))
        )
        if cancelled:
            found.append(Violation("succeeded_run_not_cancelled", state.run_id, f"cancelled nodes {cancelled}"))
        if unhandled:
            detail = f"failed nodes without a failure edge {unhandled}"
            found.append(Violation("succeeded_run_failures_handled", state.run_id, detail))
    found += nothing_in_flight(state)
    error = json.loads(state.run.get("error") or "{}")
    if error.get("type") == "engine_invariant":
        found.append(Violation("no_engine_invariant_failure", state.run_id, error.get("message", "")))
    return found


def nothing_in_flight(state: RunState) -> list[Violation]:
    """An ended run has no node queued, running or waiting: no worker will ever complete one (they drop tokens of
    ended runs), so such a node would show in flight forever, in Redis and in ``run_steps``."""
    live = {node_id: s["status"] for node_id, s in state.nodes.items() if s["status"] in IN_FLIGHT_NODE_STATUSES}
    if state.status in TERMINAL_RUN_STATUSES and live:
        return [Violation("nothing_in_flight_after_end", state.run_id, f"run {state.status} with nodes {live}")]
    return []


def executions(log: Iterable[Execution], redelivered: Iterable[str] = ()) -> list[Violation]:
    """A handler runs only tokens of the run's current epoch, and each token once unless it was ``redelivered``
    (a worker died before acknowledging it)."""
    found = []
    runs: Counter[str] = Counter()
    for execution in log:
        runs[execution.token_id + "@" + execution.run_id] += 1
        if execution.token_epoch < execution.run_epoch:
            found.append(
                Violation(
                    "no_stale_epoch_execution",
                    execution.run_id,
                    f"token {execution.token_id} executed while the run was in epoch {execution.run_epoch}"
                    f" ({execution.run_status})",
                )
            )
    again = set(redelivered)
    for key, n in sorted(runs.items()):
        if n > 1 and key.split("@")[0] not in again:
            token_id, run_id = key.split("@")
            found.append(Violation("token_executed_once", run_id, f"token {token_id} executed {n} times"))
    return found


def outcome(state: RunState, status: str, nodes: Mapping[str, str] | None) -> list[Violation]:
    """The run ended as the reference semantics say (``nodes`` only when the run succeeded)."""
    actual = {node_id: s["status"] for node_id, s in state.nodes.items()}
    if state.status != status or (nodes is not None and actual != dict(nodes)):
        detail = f"ended {state.status} with {actual}; expected {status}" + (f" with {dict(nodes)}" if nodes else "")
        return [Violation("expected_outcome", state.run_id, detail)]
    return []


async def recorded(pool: asyncpg.Pool, state: RunState) -> list[Violation]:
    """Once the ledger is drained, Postgres says what Redis says: the run's status, error and end, and each node's
    status at its current attempt (a node reset by a resume, pending again, has no row of its own yet); and an
    ended run has no earlier attempt left queued or running."""
    run_id = state.run_id
    row = await pool.fetchrow("SELECT status, error, ended_at, ir_version FROM runs WHERE id = $1", run_id)
    if row is None:
        return [Violation("recorded_run", run_id, "no runs row")]
    found = []
    if (row["status"], row["ir_version"]) != (state.status, int(state.run.get("ir_version", 1))):
        detail = f"row has {row['status']} at IR version {row['ir_version']}, Redis {state.status} at" + (
            f" {state.run.get('ir_version')}"
        )
        found.append(Violation("recorded_run", run_id, detail))
    redis_error = json.loads(state.run["error"]) if "error" in state.run else None
    row_error = json.loads(row["error"]) if isinstance(row["error"], str) else row["error"]
    if row_error != redis_error or (row["ended_at"] is None) != ("ended_ms" not in state.run):
        detail = f"row error {row_error} ended_at {row['ended_at']}; Redis error {redis_error}" + (
            f" ended_ms {state.run.get('ended_ms')}"
        )
        found.append(Violation("recorded_run_error", run_id, detail))
    rows = await pool.fetch("SELECT node_id, attempt, status FROM run_steps WHERE run_id = $1", run_id)
    steps = {(r["node_id"], r["attempt"]): r["status"] for r in rows}
    if state.status in TERMINAL_RUN_STATUSES:
        # An attempt that is not the node's current one is over, whatever happened to the run since.
        current = {(node_id, node.get("attempt", 0)) for node_id, node in state.nodes.items()}
        over = {key: s for key, s in steps.items() if key not in current and s in IN_FLIGHT_NODE_STATUSES}
        if over:
            detail = f"run {state.status} with earlier attempts still in flight {sorted(over)}"
            found.append(Violation("recorded_steps_ended", run_id, detail))
    for node_id, node in sorted(state.nodes.items()):
        if node["status"] == "pending":
            continue
        recorded_status = steps.get((node_id, node.get("attempt", 0)))
        if recorded_status != node["status"]:
            detail = f"step {node_id}#{node.get('attempt', 0)} recorded {recorded_status}, Redis {node['status']}"
            found.append(Violation("recorded_step", run_id, detail))
    return found
