"""Every Redis key and stream name aob uses, in one place.

Per-run keys carry the run id in a hash tag (``{R}``) so one run's keys share a cluster slot.
A ``prefix`` namespaces a whole deployment (tests use a unique prefix each).
Lua scripts spell no key name: they get keys in KEYS, and a ``KeyTemplate`` in ARGV for a key named by data
the script reads (a token's type, a run's tenant).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

COMPLETION_SIGNALS = "completion_signals"
DELAYED = "wf.delayed"
LEDGER = "wf.ledger"
DLQ = "wf.dlq"
CHILDREN = "wf.children"
RUN_DEADLINES = "runs:deadlines"
RECORDER_GROUP = "recorder"
CONTROL_GROUP = "control"
CONTROL_ACTIVE = "ctrl:active"


# Stands for the one variable part of a key while its template is taken; no real id contains it.
_BLANK = "\x00"


@dataclass(frozen=True, slots=True)
class KeyTemplate:
    """A key name with one blank, for a script that fills it in: ``head .. value .. tail`` in Lua."""

    head: str
    tail: str

    @classmethod
    def of(cls, build: Callable[[str], str]) -> KeyTemplate:
        """The template of a one-argument ``Keys`` method, e.g. ``KeyTemplate.of(keys.tasks)``."""
        head, blank, tail = build(_BLANK).partition(_BLANK)
        if not blank or _BLANK in tail:
            raise ValueError(f"{build.__qualname__}: expected a key with exactly one variable part")
        return cls(head, tail)

    def format(self, value: str) -> str:
        """The key for ``value``, as the script builds it."""
        return self.head + value + self.tail

    def for_lua(self) -> list[str]:
        """``{head, tail}`` as the scripts take it (in a JSON ARGV)."""
        return [self.head, self.tail]


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds key names under one deployment prefix."""

    prefix: str = ""

    def run(self, run_id: str) -> str:
        return f"{self.prefix}run:{{{run_id}}}"

    def ir(self, run_id: str) -> str:
        return f"{self.prefix}ir:{{{run_id}}}"

    def applied(self, run_id: str) -> str:
        return f"{self.prefix}applied:{{{run_id}}}"

    def nodes(self, run_id: str) -> str:
        return f"{self.prefix}node:{{{run_id}}}"

    def ctx(self, run_id: str) -> str:
        return f"{self.prefix}ctx:{{{run_id}}}"

    def join(self, run_id: str) -> str:
        return f"{self.prefix}join:{{{run_id}}}"

    def events(self, run_id: str) -> str:
        return f"{self.prefix}events:{{{run_id}}}"

    def logs(self, run_id: str, node_id: str) -> str:
        return f"{self.prefix}logs:{{{run_id}}}:{node_id}"

    def tenant_events(self, tenant_id: str) -> str:
        return f"{self.prefix}events:tenant:{tenant_id}"

    def cas(self, digest: str) -> str:
        return f"{self.prefix}cas:{digest}"

    def tasks(self, node_type: str) -> str:
        return f"{self.prefix}wf.tasks.{node_type}"

    def workers_group(self, node_type: str) -> str:
        return f"workers.{node_type}"

    @property
    def completion_signals(self) -> str:
        return f"{self.prefix}{COMPLETION_SIGNALS}"

    def coordinator_inflight(self, coordinator_id: str) -> str:
        return f"{self.prefix}coord:{coordinator_id}:inflight"

    def coordinator_alive(self, coordinator_id: str) -> str:
        return f"{self.prefix}coord:{coordinator_id}:alive"

    @property
    def coordinators(self) -> str:
        return f"{self.prefix}coordinators"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}{DELAYED}"

    @property
    def ledger(self) -> str:
        return f"{self.prefix}{LEDGER}"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}{DLQ}"

    @property
    def children(self) -> str:
        """Stream of child runs' ends (run id, parent run/node, status, outputs, error), for the parent's node."""
        return f"{self.prefix}{CHILDREN}"

    def control_state(self, run_id: str, node_id: str) -> str:
        """Hash of one control node execution (workflow, loop, map): its token, children and results."""
        return f"{self.prefix}ctrl:{{{run_id}}}:{node_id}"

    def child_runs(self, run_id: str) -> str:
        """Set of the child runs a run started (for cancelling descendants and listing children)."""
        return f"{self.prefix}children:{{{run_id}}}"

    @property
    def control_active(self) -> str:
        """Set of ``<run id> <node id>`` pairs whose control node is waiting for its children."""
        return f"{self.prefix}{CONTROL_ACTIVE}"

    @property
    def run_deadlines(self) -> str:
        return f"{self.prefix}{RUN_DEADLINES}"

    def rate(self, scope: str) -> str:
        return f"{self.prefix}rate:{scope}"

    def tenant_active_runs(self, tenant_id: str) -> str:
        return f"{self.prefix}active:{tenant_id}"

    def token_charge(self, token_id: str, run_id: str) -> str:
        """Marks that one execution's tokens were counted against its tenant's budget (a redelivery counts none)."""
        return f"{self.prefix}charged:{{{run_id}}}:{token_id}"

    def token_budget(self, tenant_id: str, day: str) -> str:
        return f"{self.prefix}tokens:{tenant_id}:{day}"

    def key_revocations(self) -> str:
        """Pub/sub channel: the id of each API key revoked, for the processes holding its streams open."""
        return f"{self.prefix}keys:revoked"

    def workflow_changes(self) -> str:
        """Pub/sub channel: the tenant id of each workflow created, changed or archived, for API processes' caches."""
        return f"{self.prefix}workflows:changed"

    def agent_token(self, token_hash: str) -> str:
        """A run-scoped API token minted for one agent execution, by the sha256 of the token."""
        return f"{self.prefix}agent_token:{token_hash}"
