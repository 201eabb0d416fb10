"""Turning a batch of stream entries into ready-to-run node contexts, with a few pipelined round trips."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from pydantic import ValidationError

from common.errors import NodeFailed, TemplateError
from common.keys import Keys
from common.runs.cas import Cas
from common.runs.ir_cache import IrCache
from common.runs.messages import (
    TERMINAL_RUN_STATUSES,
    CompletionSignal,
    Event,
    NodeError,
    Token,
    unsupported_version,
)
from common.runs.scripts import now_ms
from common.secrets import SECRET_FIELDS, SecretSlots
from common.workflow.ir import CONTROL_TYPES, IrNode
from common.workflow.templates import TemplateLimits, TemplateScope, referenced_nodes, render_value
from workers._handler import NodeContext

logger = logging.getLogger(__name__)

RUN_FIELDS = ["status", "tenant", "inputs", "started_by", "ir_version", "epoch"]
# A token may run only while its node is still waiting for it (or for this very attempt, redelivered).
LIVE_NODE_STATUSES = frozenset({"queued", "running", "waiting"})


@dataclass
class Prepared:
    """One entry after preparation: ``ctx`` to run, or a ready ``signal`` (it failed early), or neither (drop)."""

    entry_id: str
    fields: dict[str, str] | None
    token: Token | None = None
    ctx: NodeContext | None = None
    signal: CompletionSignal | None = None
    malformed: bool = False


class Preparer:
    """Loads run fields, IRs and upstream outputs for many tokens at once and resolves their configs."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        cas: Cas,
        irs: IrCache,
        worker_id: str,
        template_limits: TemplateLimits,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._cas = cas
        self._irs = irs
        self._worker_id = worker_id
        self._template_limits = template_limits

    async def prepare(self, entries: Sequence[tuple[str, dict[str, str] | None]]) -> list[Prepared]:
        """Prepare every entry; entries of ended or unknown runs come back with neither ctx nor signal.

        One round trip reads the run fields, the IRs not cached yet and the outputs the cached IRs say each
        token needs; only tokens of newly seen (or patched) runs need a second one for their outputs.
        """
        prepared = [self._parse(entry_id, fields) for entry_id, fields in entries]
        live = [(p, p.token) for p in prepared if p.token is not None]
        if not live:
            return prepared
        missing = sorted({token.run_id for _, token in live if self._irs.peek(token.run_id) is None})
        planned = [self._needed(token) for _, token in live]
        async with self._redis.pipeline(transaction=False) as pipe:
            for _, token in live:
                pipe.hmget(self._keys.run(token.run_id), RUN_FIELDS)
                pipe.hget(self._keys.nodes(token.run_id), token.node_id)
            for run_id in missing:
                pipe.get(self._keys.ir(run_id))
            for (_, token), needed in zip(live, planned, strict=True):
                if needed:
                    pipe.hmget(self._keys.ctx(token.run_id), needed)
            replies = iter(await pipe.execute())
            runs = [(next(replies), next(replies)) for _ in live]
            for run_id in missing:
                raw = next(replies)
                if raw is not None:
                    self._irs.store_json(run_id, raw)
            planned_refs = [next(replies) if needed else [] for needed in planned]
        wanted: list[tuple[Prepared, Token, dict[str, str | None], IrNode, list[str], list[str], list[Any]]] = []
        stale: list[tuple[Token, str]] = []
        for (p, token), (values, node_state), needed, refs in zip(live, runs, planned, planned_refs, strict=True):
            run = dict(zip(RUN_FIELDS, values, strict=True))
            if run["status"] is None or run["status"] in TERMINAL_RUN_STATUSES:
                continue
            reason = _stale_reason(token, run, node_state)
            if reason is not None:
                stale.append((token, reason))
                continue
            entry = await self._irs.get(token.run_id, int(run["ir_version"] or 0))
            if entry is None or token.node_id not in entry.ir.nodes:
                continue
            node = entry.ir.nodes[token.node_id]
            predecessors = entry.predecessors(node.id)
            wanted.append((p, token, run, node, predecessors, needed, refs))
        # Tokens whose IR was not cached (or was patched) learn only now which outputs they need.
        late = [w for w in wanted if _needed_outputs(w[3], w[4]) != w[5]]
        fetched: dict[int, list[Any]] = {}
        if any(_needed_outputs(w[3], w[4]) for w in late):
            async with self._redis.pipeline(transaction=False) as pipe:
                for _, token, _, node, predecessors, _, _ in late:
                    if _needed_outputs(node, predecessors):
                        pipe.hmget(self._keys.ctx(token.run_id), _needed_outputs(node, predecessors))
                late_refs = iter(await pipe.execute())
            fetched = {id(w[0]): next(late_refs) if _needed_outputs(w[3], w[4]) else [] for w in late}
        for p, token, run, node, predecessors, _, refs in wanted:
            await self._resolve(p, token, run, node, predecessors, fetched.get(id(p), refs))
        if stale:
            await self._announce_dropped(stale)
        return prepared

    async def _announce_dropped(self, stale: list[tuple[Token, str]]) -> None:
        """Tell each stale token's run that it was dropped unexecuted (its entry is acknowledged by the caller)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for token, reason in stale:
                logger.warning("token %s of run %s dropped: %s", token.token_id, token.run_id, reason)
                data = {"token_id": token.token_id, "attempt": token.attempt, "reason": reason}
                event = Event(
                    type="token_dropped", run_id=token.run_id, node_id=token.node_id, ts=int(now_ms()), data=data
                )
                pipe.xadd(self._keys.events(token.run_id), {"e": event.stored()})
            await pipe.execute()

    def _needed(self, token: Token) -> list[str]:
        """The outputs a token needs according to the cached IR (empty when the IR is not cached)."""
        entry = self._irs.peek(token.run_id)
        if entry is None or token.node_id not in entry.ir.nodes:
            return []
        node = entry.ir.nodes[token.node_id]
        return _needed_outputs(node, entry.predecessors(node.id))

    def _parse(self, entry_id: str, fields: dict[str, str] | None) -> Prepared:
        if not fields or "t" not in fields:
            return Prepared(entry_id, fields)
        try:
            return Prepared(entry_id, fields, token=Token.model_validate_json(fields["t"]))
        except ValidationError as exc:
            if (refusal := unsupported_version(exc)) is not None:
                # Dead-lettered as malformed (the node is not failed): a worker that reads the version may replay it.
                logger.error("token %s refused: %s", entry_id, refusal)
            return Prepared(entry_id, fields, malformed=True)

    async def _resolve(
        self,
        p: Prepared,
        token: Token,
        run: dict[str, str | None],
        node: IrNode,
        predecessors: list[str],
        node_refs: list[str | None],
    ) -> None:
        upstream: dict[str, Any] = {}
        for node_id, ref in zip(_needed_outputs(node, predecessors), node_refs, strict=True):
            if ref is not None:
                upstream[node_id] = await self._cas.load_output(ref)
        inputs = json.loads(run["inputs"] or "{}")
        # Secret references the author wrote become placeholders before templates run: see common.secrets.references.
        slots = SecretSlots()
        try:
            config = (
                node.config
                if node.type in CONTROL_TYPES
                else render_value(
                    slots.shield(node.config, SECRET_FIELDS.get(node.type, ())),
                    TemplateScope(inputs, upstream, limits=self._template_limits),
                )
            )
        except TemplateError as exc:
            error = NodeError(type="template_error", message=f"config: {exc.message}", retryable=False)
            p.signal = CompletionSignal.failed(
                token, error, worker_id=self._worker_id, started_at_ms=now_ms(), ended_at_ms=now_ms()
            )
            return
        p.ctx = NodeContext(
            token=token,
            node=node,
            config=config,
            inputs=inputs,
            upstream=upstream,
            predecessors=predecessors,
            tenant_id=run["tenant"] or "",
            started_by=run["started_by"],
            redis=self._redis,
            keys=self._keys,
            worker_id=self._worker_id,
            secret_slots=slots,
        )


def _needed_outputs(node: IrNode, predecessors: list[str]) -> list[str]:
    """The nodes whose outputs a node's handler may see: its predecessors and those its config refers to."""
    return sorted(set(predecessors) | referenced_nodes(node.config))


def node_failed_error(exc: NodeFailed) -> NodeError:
    """The signal form of a handler's ``NodeFailed``."""
    return NodeError(type=exc.error_type, message=exc.message, retryable=exc.retryable)


def _stale_reason(token: Token, run: dict[str, str | None], node_raw: str | None) -> str | None:
    """Why ``token`` must not run (an older epoch, or its node moved on to another attempt); None when it may."""
    epoch = run["epoch"] or "0"
    if token.epoch != epoch:
        return f"token of epoch {token.epoch}, the run is in epoch {epoch} (resumed since it was queued)"
    if token.purpose != "run":
        return None
    state = json.loads(node_raw) if node_raw else {}
    status, attempt = state.get("status", "pending"), state.get("attempt")
    if status not in LIVE_NODE_STATUSES or attempt != token.attempt:
        return f"node is {status} at attempt {attempt}, not waiting for attempt {token.attempt}"
    return None
