"""One reconciliation of Redis with Postgres: live runs Redis lost are rebuilt, stranded runs started, and
half-done patches settled. The coordinator runs it periodically, ``aob recover`` on demand; any number may run."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg

from common.retry import is_transient
from common.runs.cancel import cancel_run
from common.runs.cas import Cas
from common.runs.messages import TERMINAL_RUN_STATUSES
from common.runs.patch_intents import settle_stale_intents
from common.runs.rebuild import RebuildOutcome, rebuild_run
from common.runs.records import live_runs, recorded_status
from common.runs.scripts import Scripts
from common.runs.stranded import start_stranded_runs

logger = logging.getLogger(__name__)

PAGE = 500


@dataclass
class ReconcileReport:
    """What one pass did: rebuilt runs, child runs cancelled because their parent had ended, stranded runs
    started, patch intents settled."""

    rebuilt: list[RebuildOutcome] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    settled: int = 0

    def __bool__(self) -> bool:
        return bool(self.rebuilt or self.cancelled or self.started or self.settled)


async def runs_without_hot_state(scripts: Scripts, pool: asyncpg.Pool) -> list[tuple[str, str | None]]:
    """``(run id, parent run id)`` of every started run Postgres holds as live and Redis has no hash of."""
    lost: list[tuple[str, str | None]] = []
    after = ""
    while True:
        page = await live_runs(pool, after=after, limit=PAGE)
        if not page:
            return lost
        async with scripts.redis.pipeline(transaction=False) as pipe:
            for run_id, _ in page:
                pipe.exists(scripts.keys.run(run_id))
            found = await pipe.execute()
        lost += [run for run, hot in zip(page, found, strict=True) if not hot]
        after = page[-1][0]


def children_first(runs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """``runs`` with every child before its parent: a parent's control node, queued again, then finds its
    children's hot state instead of starting them afresh."""
    parent_of = dict(runs)

    def depth(run_id: str) -> int:
        seen = {run_id}
        parent = parent_of.get(run_id)
        while parent is not None and parent in parent_of and parent not in seen:
            seen.add(parent)
            parent = parent_of[parent]
        return len(seen)

    return sorted(runs, key=lambda run: (-depth(run[0]), run[0]))


async def reconcile(
    scripts: Scripts, pool: asyncpg.Pool, cas: Cas, *, max_agents: int, older_than_s: float
) -> ReconcileReport:
    """One pass; stranded runs and patch intents are left alone until ``older_than_s`` old (their writer may be
    at work). A run that cannot be rebuilt is logged and skipped; a Redis or Postgres outage ends the pass."""
    report = ReconcileReport()
    for run_id, parent in children_first(await runs_without_hot_state(scripts, pool)):
        try:
            outcome = await rebuild_run(scripts, pool, cas, run_id, max_agents=max_agents)
        except Exception as exc:
            if is_transient(exc):
                raise
            logger.exception("run %s: rebuild failed", run_id)
            outcome = RebuildOutcome(run_id, "unrecoverable", detail=f"{type(exc).__name__}: {exc}")
        report.rebuilt.append(outcome)
        if outcome.result == "rebuilt" and parent is not None:
            # Its parent ended while the child's end went unrecorded: nothing waits for it any more.
            parent_status = await recorded_status(pool, parent)
            if parent_status in TERMINAL_RUN_STATUSES:
                await cancel_run(scripts, run_id, reason=f"parent run {parent} {parent_status}")
                report.cancelled.append(run_id)
    report.started = await start_stranded_runs(scripts, pool, older_than_s=older_than_s, max_agents=max_agents)
    report.settled = await settle_stale_intents(pool, scripts.redis, scripts.keys, older_than_s=older_than_s)
    return report
