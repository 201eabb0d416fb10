"""Every Redis key and stream name aob uses, in one place.

The engine is slot-local: its scripts and transactions address keys of one Redis Cluster hash slot. The queues runs
share (completion signals, task streams, the delayed set, the ledger, child ends, run deadlines, tenant
feeds) are split into
``shards`` (``AOB_SHARDS``, fixed at install); each shard has a hash tag that also names the keys of every run
assigned to it, so a run's state and the queues it touches share a slot.
A run's shard is a function of its id (``shard_of``): every process derives it without a lookup.
A ``prefix`` namespaces a whole deployment (tests use a unique prefix each).
Lua scripts spell no key name: they get keys in KEYS, and a ``KeyTemplate`` in ARGV for a key named by data
the script reads (a token's type, a run's tenant).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

DEFAULT_SHARDS = 16
COMPLETION_SIGNALS = "completion_signals"
DELAYED = "wf.delayed"
LEDGER = "wf.ledger"
DLQ = "wf.dlq"
CHILDREN = "wf.children"
RUN_DEADLINES = "runs:deadlines"
RECORDER_GROUP = "recorder"
CONTROL_GROUP = "control"
CONTROL_ACTIVE = "ctrl:active"
# Admission's counters and active-run sets share one slot, so one script checks and counts them all.
ADMISSION_TAG = "{admission}"


# Stands for the one variable part of a key while its template is taken; no real id contains it.
_BLANK = "\x00"


@cache
def shard_tags(shards: int) -> tuple[str, ...]:
    """The hash tag of each shard (``{s3.41}``), chosen so that shard ``i``'s slot lies in the ``i``-th of ``shards``
    equal slot ranges: a cluster whose primaries hold contiguous equal ranges (what ``redis-cli --cluster create``
    makes) gets an equal share of shards on each primary."""
    tags = []
    for shard in range(shards):
        low, high = shard * REDIS_CLUSTER_HASH_SLOTS // shards, (shard + 1) * REDIS_CLUSTER_HASH_SLOTS // shards
        suffix = 0
        while not low <= key_slot(f"s{shard}.{suffix}".encode()) < high:
            suffix += 1
        tags.append(f"{{s{shard}.{suffix}}}")
    return tuple(tags)


@dataclass(frozen=True, slots=True)
class KeyTemplate:
    """A key name with one blank, for a script that fills it in: ``head .. value .. tail`` in Lua."""

    head: str
    tail: str

    @classmethod
    def of(cls, build: Callable[[str], str]) -> KeyTemplate:
        """The template of a one-argument key builder, e.g. ``KeyTemplate.of(keys.shard(0).tasks)``."""
        head, blank, tail = build(_BLANK).partition(_BLANK)
        if not blank or _BLANK in tail:
            raise ValueError(f"{getattr(build, '__qualname__', build)}: expected a key with exactly one variable part")
        return cls(head, tail)

    def format(self, value: str) -> str:
        """The key for ``value``, as the script builds it."""
        return self.head + value + self.tail

    def for_lua(self) -> list[str]:
        """``{head, tail}`` as the scripts take it (in a JSON ARGV)."""
        return [self.head, self.tail]


@dataclass(frozen=True, slots=True)
class ShardKeys:
    """The queues of one shard: every key here shares the shard's slot with the keys of the shard's runs."""

    prefix: str
    index: int
    tag: str

    def tasks(self, node_type: str) -> str:
        return f"{self.prefix}wf.tasks.{node_type}:{self.tag}"

    @property
    def completion_signals(self) -> str:
        return f"{self.prefix}{COMPLETION_SIGNALS}:{self.tag}"

    def coordinator_inflight(self, coordinator_id: str) -> str:
        """The signals one coordinator took from this shard and has not applied yet."""
        return f"{self.prefix}coord:{self.tag}:{coordinator_id}:inflight"

    @property
    def coordinators(self) -> str:
        """Set of the coordinators that took signals of this shard (whose inflight lists may hold some)."""
        return f"{self.prefix}coordinators:{self.tag}"

    @property
    def lease(self) -> str:
        """The id of the coordinator that owns this shard's signals and timers, with an expiry (see coordinator)."""
        return f"{self.prefix}lease:{self.tag}"

    @property
    def delayed(self) -> str:
        return f"{self.prefix}{DELAYED}:{self.tag}"

    @property
    def ledger(self) -> str:
        return f"{self.prefix}{LEDGER}:{self.tag}"

    @property
    def children(self) -> str:
        """Stream of child runs' ends (run id, parent run/node, status, outputs, error), for the parent's node."""
        return f"{self.prefix}{CHILDREN}:{self.tag}"

    @property
    def run_deadlines(self) -> str:
        return f"{self.prefix}{RUN_DEADLINES}:{self.tag}"

    def tenant_events(self, tenant_id: str) -> str:
        """A tenant's run-level events of the runs of this shard (a tenant's feed reads every shard's)."""
        return f"{self.prefix}events:tenant:{self.tag}:{tenant_id}"

    @property
    def ended_runs(self) -> str:
        """List of ``<run id> <tenant>`` of runs that ended, for the coordinator to drop from admission's sets."""
        return f"{self.prefix}runs:ended:{self.tag}"


@dataclass(frozen=True, slots=True)
class Keys:
    """Builds key names under one deployment prefix, for ``shards`` shards."""

    prefix: str = ""
    shards: int = DEFAULT_SHARDS

    def shard_of(self, run_id: str) -> int:
        """The shard of run ``run_id``: a hash of the id, so it needs no lookup and never changes."""
        return zlib.crc32(run_id.encode()) % self.shards

    def shard(self, index: int) -> ShardKeys:
        """The queues of shard ``index``."""
        return ShardKeys(self.prefix, index, shard_tags(self.shards)[index])

    def shard_for(self, run_id: str) -> ShardKeys:
        """The queues of the shard of run ``run_id``."""
        return self.shard(self.shard_of(run_id))

    def all_shards(self) -> list[ShardKeys]:
        return [self.shard(index) for index in range(self.shards)]

    def _tagged(self, name: str, run_id: str) -> str:
        return f"{self.prefix}{name}:{shard_tags(self.shards)[self.shard_of(run_id)]}:{run_id}"

    def run(self, run_id: str) -> str:
        return self._tagged("run", run_id)

    def ir(self, run_id: str) -> str:
        return self._tagged("ir", run_id)

    def applied(self, run_id: str) -> str:
        return self._tagged("applied", run_id)

    def nodes(self, run_id: str) -> str:
        return self._tagged("node", run_id)

    def ctx(self, run_id: str) -> str:
        return self._tagged("ctx", run_id)

    def join(self, run_id: str) -> str:
        return self._tagged("join", run_id)

    def events(self, run_id: str) -> str:
        return self._tagged("events", run_id)

    def logs(self, run_id: str, node_id: str) -> str:
        return f"{self._tagged('logs', run_id)}:{node_id}"

    def tenant_events(self, tenant_id: str) -> list[str]:
        """Every shard's stream of the tenant's run-level events."""
        return [shard.tenant_events(tenant_id) for shard in self.all_shards()]

    def tenant_of_feed(self, stream: str) -> str:
        """The tenant of a shard's tenant-event stream (the inverse of ``ShardKeys.tenant_events``)."""
        return stream.partition("}:")[2]

    def is_task_stream(self, stream: str) -> bool:
        """Whether ``stream`` is a shard's task stream of some node type."""
        templates = (KeyTemplate.of(shard.tasks) for shard in self.all_shards())
        return any(
            len(stream) > len(t.head) + len(t.tail) and stream.startswith(t.head) and stream.endswith(t.tail)
            for t in templates
        )

    def cas(self, digest: str) -> str:
        """A blob, in the shard its digest hashes to: stored with its ledger entry (``shard_for(digest)``) at once."""
        return self._tagged("cas", digest)

    def tasks(self, node_type: str) -> list[str]:
        """Every shard's task stream of ``node_type``."""
        return [shard.tasks(node_type) for shard in self.all_shards()]

    def workers_group(self, node_type: str) -> str:
        return f"workers.{node_type}"

    def coordinator_alive(self, coordinator_id: str) -> str:
        return f"{self.prefix}coord:{coordinator_id}:alive"

    @property
    def coordinators(self) -> str:
        """Set of every coordinator that heartbeats (each shares the shards out from who is alive)."""
        return f"{self.prefix}coordinators"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}{DLQ}"

    def control_state(self, run_id: str, node_id: str) -> str:
        """Hash of one control node execution (workflow, loop, map): its token, children and results."""
        return f"{self._tagged('ctrl', run_id)}:{node_id}"

    def child_runs(self, run_id: str) -> str:
        """Set of the child runs a run started (for cancelling descendants and listing children)."""
        return self._tagged("children", run_id)

    @property
    def control_active(self) -> str:
        """Set of ``<run id> <node id>`` pairs whose control node is waiting for its children."""
        return f"{self.prefix}{CONTROL_ACTIVE}"

    def rate(self, scope: str) -> str:
        return f"{self.prefix}rate:{ADMISSION_TAG}:{scope}"

    def tenant_active_runs(self, tenant_id: str) -> str:
        return f"{self.prefix}active:{ADMISSION_TAG}:{tenant_id}"

    def token_charge(self, tenant_id: str, token_id: str, run_id: str) -> str:
        """Marks that one execution's tokens were counted against its tenant's budget (a redelivery counts none);
        in the slot of the tenant's budget, which the same script changes."""
        return f"{self.prefix}charged:{{tokens:{tenant_id}}}:{run_id}:{token_id}"

    def token_budget(self, tenant_id: str, day: str) -> str:
        return f"{self.prefix}tokens:{{tokens:{tenant_id}}}:{day}"

    def key_revocations(self) -> str:
        """Pub/sub channel: the id of each API key revoked, for the processes holding its streams open."""
        return f"{self.prefix}keys:revoked"

    def workflow_changes(self) -> str:
        """Pub/sub channel: the tenant id of each workflow created, changed or archived, for API processes' caches."""
        return f"{self.prefix}workflows:changed"

    def agent_token(self, token_hash: str) -> str:
        """A run-scoped API token minted for one agent execution, by the sha256 of the token."""
        return f"{self.prefix}agent_token:{token_hash}"
