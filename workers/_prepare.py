"""Turning a batch of stream entries into ready-to-run node contexts, in one script call (two for new runs)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from common.errors import NodeFailed, TemplateError
from common.runs.cas import Cas
from common.runs.ir_cache import CachedIr, IrCache
from common.runs.messages import (
    TERMINAL_RUN_STATUSES,
    CompletionSignal,
    Event,
    NodeError,
    Token,
    unsupported_version,
)
from common.runs.scripts import Scripts, now_ms
from common.secrets import SECRET_FIELDS, SecretSlots
from common.workflow.ir import CONTROL_TYPES
from common.workflow.templates import TemplateLimits, TemplateScope, render_value
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


@dataclass
class _Wanted:
    """A live token whose run and IR are known, waiting for its outputs to be resolved."""

    prepared: Prepared
    token: Token
    run: dict[str, str | None]
    entry: CachedIr
    planned: list[str]
    refs: list[Any]

    @property
    def needed(self) -> list[str]:
        return self.entry.shape.needed_outputs(self.token.node_id)


class Preparer:
    """Loads run fields, IRs and upstream outputs for many tokens at once and resolves their configs."""

    def __init__(
        self,
        scripts: Scripts,
        cas: Cas,
        irs: IrCache,
        worker_id: str,
        template_limits: TemplateLimits,
    ) -> None:
        self._scripts = scripts
        self._redis = scripts.redis
        self._keys = scripts.keys
        self._cas = cas
        self._irs = irs
        self._worker_id = worker_id
        self._template_limits = template_limits

    async def prepare(self, entries: Sequence[tuple[str, dict[str, str] | None]]) -> list[Prepared]:
        """Prepare every entry; entries of ended or unknown runs come back with neither ctx nor signal.

        One script call reads the run fields, the IRs not cached yet and the outputs the cached IRs say each
        token needs; only tokens of newly seen (or patched) runs need a second round trip for their outputs.
        """
        prepared = [self._parse(entry_id, fields) for entry_id, fields in entries]
        live = [(p, p.token) for p in prepared if p.token is not None]
        if not live:
            return prepared
        missing = sorted({token.run_id for _, token in live if self._irs.peek(token.run_id) is None})
        planned = [self._needed(token) for _, token in live]
        asks = [(token.run_id, token.node_id, needed) for (_, token), needed in zip(live, planned, strict=True)]
        replies, irs = await self._scripts.read_tokens(asks, RUN_FIELDS, missing)
        for run_id, raw in zip(missing, irs, strict=True):
            if raw is not None:
                self._irs.store_json(run_id, raw)
        wanted: list[_Wanted] = []
        stale: list[tuple[Token, str]] = []
        for (p, token), (values, node_state, refs), needed in zip(live, replies, planned, strict=True):
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
            wanted.append(_Wanted(p, token, run, entry, needed, refs))
        # Tokens whose IR was not cached (or was patched) learn only now which outputs they need.
        late = [w for w in wanted if w.needed != w.planned]
        late_refs: Iterator[list[Any]] = iter(())
        if any(w.needed for w in late):
            async with self._redis.pipeline(transaction=False) as pipe:
                for w in late:
                    if w.needed:
                        pipe.hmget(self._keys.ctx(w.token.run_id), w.needed)
                late_refs = iter(await pipe.execute())
        for w in late:
            w.refs = next(late_refs) if w.needed else []
        # Tokens with the same inputs text (those of one run) share one parsed copy: handlers only read it.
        inputs: dict[str, dict[str, Any]] = {}
        for w in wanted:
            raw_inputs = w.run["inputs"] or "{}"
            if raw_inputs not in inputs:
                inputs[raw_inputs] = json.loads(raw_inputs)
            await self._resolve(w, inputs[raw_inputs])
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
        return entry.shape.needed_outputs(token.node_id)

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

    async def _resolve(self, w: _Wanted, inputs: dict[str, Any]) -> None:
        p, token, run, shape = w.prepared, w.token, w.run, w.entry.shape
        node = shape.ir.nodes[token.node_id]
        upstream: dict[str, Any] = {}
        for node_id, ref in zip(w.needed, w.refs, strict=True):
            if ref is not None:
                upstream[node_id] = await self._cas.load_output(ref)
        # Secret references the author wrote become placeholders before templates run: see common.secrets.references.
        slots = SecretSlots()
        try:
            # A config without templates (secret references look like templates too) renders to itself.
            config = (
                node.config
                if node.type in CONTROL_TYPES or not shape.templated(node.id)
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
            predecessors=shape.predecessors(node.id),
            tenant_id=run["tenant"] or "",
            started_by=run["started_by"],
            redis=self._redis,
            keys=self._keys,
            worker_id=self._worker_id,
            secret_slots=slots,
        )


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
