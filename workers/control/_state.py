"""The state of one control node execution in the Redis hash ``ctrl:{R}:<node>``, changed only by small scripts.

Fields: ``token_id``; ``meta`` (what the node runs, JSON); ``ir`` (the body's IR); ``items`` (map items);
``next`` (children claimed so far, by index); ``ndone``/``nfailed`` (children ended / not succeeded);
``inflight`` (indexes claimed and not ended, space-separated); ``c:<child run id>`` -> index;
``r:<index>`` -> the child's end (JSON); ``outcome`` (the node's decided result, JSON); ``signalled``;
``admission_wait_ms`` (Redis time since when a child waits for a quota with no other child running).
A child's index is claimed (and ``child_run_started`` appended) before the child is started, so a crash in
between leaves a claimed index whose start is simply repeated: child run ids are fixed per index.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, ConfigDict

from common.keys import Keys
from common.runs.messages import ChildRunEnded, NodeError, Token
from common.runs.scripts import now_ms
from common.workflow.ir import IR
from workers.control._bodies import BodyRef

ControlKind = Literal["workflow", "loop", "map"]

# EVENT_V is the ``v`` of common.runs.messages.Event (a test holds them equal).
_EMIT = """
local EVENT_V = 1
local function emit(etype, data)
  local event = { v = EVENT_V, type = etype, run_id = ARGV[1], node_id = ARGV[2], ts = math.floor(tonumber(ARGV[3])),
    data = data }
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'e', cjson.encode(event))
end
"""

# KEYS: state. ARGV: token id, meta JSON, IR JSON, items JSON. Returns 1 when (re)initialised, 0 when the same
# token already owns the state (a redelivery).
_INIT = """
local current = redis.call('HGET', KEYS[1], 'token_id')
if current == ARGV[1] then return 0 end
if current then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], 'token_id', ARGV[1], 'meta', ARGV[2], 'ir', ARGV[3], 'items', ARGV[4],
  'next', 0, 'ndone', 0, 'nfailed', 0, 'inflight', ' ')
return 1
"""

# KEYS: state, parent events, parent's child-run set. ARGV: run id, node id, now ms, token id, child id base,
# total, concurrency, expected next (-1 = any). Claims indexes while below ``total`` and ``concurrency``;
# returns the claimed indexes.
_CLAIM = (
    _EMIT
    + """
local f = redis.call('HMGET', KEYS[1], 'token_id', 'next', 'ndone', 'outcome', 'inflight')
if f[1] ~= ARGV[4] or f[4] then return {} end
local nxt, done = tonumber(f[2]), tonumber(f[3])
local expected = tonumber(ARGV[8])
if expected >= 0 and nxt ~= expected then return {} end
local total, concurrency = tonumber(ARGV[6]), tonumber(ARGV[7])
local inflight = f[5]
local claimed = {}
while nxt < total and nxt - done < concurrency do
  local child = ARGV[5] .. '-' .. nxt
  redis.call('HSET', KEYS[1], 'c:' .. child, nxt)
  redis.call('SADD', KEYS[3], child)
  inflight = inflight .. nxt .. ' '
  emit('child_run_started', { child_run_id = child, index = nxt })
  claimed[#claimed + 1] = nxt
  nxt = nxt + 1
end
redis.call('HSET', KEYS[1], 'next', nxt, 'inflight', inflight)
return claimed
"""
)

# KEYS: state, parent events. ARGV: run id, node id, now ms, child id, end JSON, child status.
# Returns the child's index, -1 for a child this state does not know, -2 for an end already counted.
_RECORD_END = (
    _EMIT
    + """
local index = redis.call('HGET', KEYS[1], 'c:' .. ARGV[4])
if not index then return -1 end
if redis.call('HSETNX', KEYS[1], 'r:' .. index, ARGV[5]) == 0 then return -2 end
redis.call('HINCRBY', KEYS[1], 'ndone', 1)
if ARGV[6] ~= 'succeeded' then redis.call('HINCRBY', KEYS[1], 'nfailed', 1) end
local inflight = string.gsub(redis.call('HGET', KEYS[1], 'inflight'), ' ' .. index .. ' ', ' ', 1)
redis.call('HSET', KEYS[1], 'inflight', inflight)
local ended = cjson.decode(ARGV[5])
local data = { child_run_id = ARGV[4], index = tonumber(index), status = ARGV[6] }
if ended.error then data.error = ended.error end
emit('child_run_ended', data)
return tonumber(index)
"""
)

# KEYS: state. ARGV: token id, outcome JSON. The first outcome wins; returns 1 when this one did.
_DECIDE = """
if redis.call('HGET', KEYS[1], 'token_id') ~= ARGV[1] then return 0 end
return redis.call('HSETNX', KEYS[1], 'outcome', ARGV[2])
"""


class ControlMeta(BaseModel):
    """What a control node execution runs, fixed when its token first arrives."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: int = 1
    kind: ControlKind
    token: Token
    tenant_id: str
    started_by: str | None
    depth: int
    child_base: str
    config: dict[str, Any]
    inputs: dict[str, Any]
    upstream: dict[str, Any]
    body: BodyRef
    total: int
    started_at_ms: float
    deadline_ms: float | None = None


class Outcome(BaseModel):
    """The node's decided result: an output, or the error it fails with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["succeeded", "failed"]
    output: Any = None
    error: NodeError | None = None


@dataclass(frozen=True)
class ControlState:
    """One read of a node's state hash (without the children's ends, read on demand)."""

    run_id: str
    node_id: str
    meta: ControlMeta
    next: int
    ndone: int
    nfailed: int
    inflight: list[int]
    outcome: Outcome | None
    signalled: bool

    def child_id(self, index: int) -> str:
        return f"{self.meta.child_base}-{index}"


class ControlStore:
    """Reads and changes control node state; every change is one atomic script."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._init = redis.register_script(_INIT)
        self._claim = redis.register_script(_CLAIM)
        self._record_end = redis.register_script(_RECORD_END)
        self._decide = redis.register_script(_DECIDE)

    def _key(self, run_id: str, node_id: str) -> str:
        return self._keys.control_state(run_id, node_id)

    async def init(self, meta: ControlMeta, ir: IR, items: list[Any]) -> bool:
        """Create the state of ``meta.token`` (replacing an earlier attempt's); False when it already exists."""
        token = meta.token
        created = await self._init(
            keys=[self._key(token.run_id, token.node_id)],
            args=[token.token_id, meta.model_dump_json(), ir.model_dump_json(), json.dumps(items)],
        )
        await self._redis.sadd(self._keys.control_active, f"{token.run_id} {token.node_id}")
        return bool(created)

    async def load(self, run_id: str, node_id: str) -> ControlState | None:
        """The node's state, or None when it has none."""
        fields = ["meta", "next", "ndone", "nfailed", "inflight", "outcome", "signalled"]
        values = await self._redis.hmget(self._key(run_id, node_id), fields)
        raw = dict(zip(fields, values, strict=True))
        if raw["meta"] is None:
            return None
        return ControlState(
            run_id=run_id,
            node_id=node_id,
            meta=ControlMeta.model_validate_json(raw["meta"]),
            next=int(raw["next"] or 0),
            ndone=int(raw["ndone"] or 0),
            nfailed=int(raw["nfailed"] or 0),
            inflight=[int(i) for i in (raw["inflight"] or "").split()],
            outcome=Outcome.model_validate_json(raw["outcome"]) if raw["outcome"] else None,
            signalled=raw["signalled"] is not None,
        )

    async def ir(self, state: ControlState) -> IR:
        raw = await self._redis.hget(self._key(state.run_id, state.node_id), "ir")
        return IR.model_validate_json(raw or "{}")

    async def items(self, state: ControlState) -> list[Any]:
        raw = await self._redis.hget(self._key(state.run_id, state.node_id), "items")
        items = json.loads(raw or "[]")
        return items if isinstance(items, list) else []

    async def claim(self, state: ControlState, total: int, concurrency: int, expected_next: int = -1) -> list[int]:
        """Claim the next child indexes (appending ``child_run_started`` for each); returns them."""
        result = await self._claim(
            keys=[
                self._key(state.run_id, state.node_id),
                self._keys.events(state.run_id),
                self._keys.child_runs(state.run_id),
            ],
            args=[
                state.run_id,
                state.node_id,
                now_ms(),
                state.meta.token.token_id,
                state.meta.child_base,
                total,
                concurrency,
                expected_next,
            ],
        )
        return [int(i) for i in result]

    async def record_end(self, run_id: str, node_id: str, end: ChildRunEnded) -> int:
        """Count a child's end once (appending ``child_run_ended``); returns its index, -1 unknown, -2 repeat."""
        result = await self._record_end(
            keys=[self._key(run_id, node_id), self._keys.events(run_id)],
            args=[run_id, node_id, now_ms(), end.run_id, end.model_dump_json(exclude_none=True), end.status],
        )
        return int(result)

    async def ends(self, state: ControlState, indexes: list[int]) -> list[ChildRunEnded | None]:
        """The ends of the children at ``indexes`` (None where a child has not ended)."""
        if not indexes:
            return []
        values = await self._redis.hmget(self._key(state.run_id, state.node_id), [f"r:{i}" for i in indexes])
        return [ChildRunEnded.model_validate_json(v) if v is not None else None for v in values]

    async def waiting_since(self, state: ControlState, now_ms: int) -> int:
        """When the node began waiting for a child's admission (``now_ms`` if it just began)."""
        key = self._key(state.run_id, state.node_id)
        await self._redis.hsetnx(key, "admission_wait_ms", now_ms)
        return int(await self._redis.hget(key, "admission_wait_ms") or now_ms)

    async def stop_waiting(self, state: ControlState) -> None:
        """A child was admitted: the next refusal starts a new wait."""
        await self._redis.hdel(self._key(state.run_id, state.node_id), "admission_wait_ms")

    async def decide(self, state: ControlState, outcome: Outcome) -> None:
        """Record the node's outcome unless one was recorded first."""
        await self._decide(
            keys=[self._key(state.run_id, state.node_id)],
            args=[state.meta.token.token_id, outcome.model_dump_json(exclude_none=True)],
        )

    async def mark_signalled(self, state: ControlState) -> None:
        """The completion was pushed: the node no longer waits."""
        await self._redis.hset(self._key(state.run_id, state.node_id), "signalled", 1)
        await self.forget(state.run_id, state.node_id)

    async def forget(self, run_id: str, node_id: str) -> None:
        await self._redis.srem(self._keys.control_active, f"{run_id} {node_id}")

    async def active(self) -> list[tuple[str, str]]:
        """(run id, node id) of every control node still waiting for its children."""
        members = [m async for m in self._redis.sscan_iter(self._keys.control_active, count=500)]
        return [(run_id, node_id) for run_id, _, node_id in (m.partition(" ") for m in members)]
