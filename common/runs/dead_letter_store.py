"""Reading ``wf.dlq`` newest first, the tenant each dead letter belongs to, and replaying or discarding one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis
from pydantic import ValidationError

from common.errors import AobError
from common.keys import Keys
from common.runs.dead_letters import DeadLetter, DeadLetterKind
from common.runs.scripts import script_source

# The id of a stream entry, ``<ms>-<sequence>`` (to ``fullmatch``): ASCII digits, at most 19 each, so Redis never
# refuses one as too large.
ENTRY_ID = re.compile(r"[0-9]{1,19}-[0-9]{1,19}")
# Entries read per XREVRANGE while filtering a page, and at most per page: a page of a filtered listing may hold
# fewer items than asked while more remain (its cursor then continues the scan).
_CHUNK = 200
SCAN_MAX = 5000


class ReplayRefused(AobError):
    """A dead letter that is still parked but cannot go back (its run ended, a resume made its token stale, ...)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Located:
    """A dead letter with the tenant of its run (None when it names no run this deployment knows)."""

    letter: DeadLetter
    tenant_id: str | None


@dataclass(frozen=True)
class Replayed:
    """Where a replay sent the message: a stream (with its new entry id) or the completion-signals list."""

    target: str
    entry_id: str | None


@dataclass(frozen=True)
class DeadLetterPage:
    """Dead letters newest first; ``next_before`` is the entry id to continue after, None at the end."""

    items: list[Located]
    next_before: str | None


class DeadLetterStore:
    """``wf.dlq`` as an operator sees it: scoped to tenants, read by id, replayed, discarded."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, pool: asyncpg.Pool) -> None:
        self._redis = redis
        self._keys = keys
        self._pool = pool
        self._replay = redis.register_script(script_source("replay_dead_letter"))

    async def get(self, letter_id: str) -> Located | None:
        """The dead letter ``letter_id`` (an entry id) with its tenant, or None when it is not (or no longer) parked."""
        entries = await self._redis.xrange(self._keys.dlq, letter_id, letter_id)
        if not entries:
            return None
        letter = self._read(*entries[0])
        return Located(letter, (await self.tenants_of([letter]))[0])

    async def page(
        self,
        *,
        tenant_id: str | None,
        run_id: str | None = None,
        kind: DeadLetterKind | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> DeadLetterPage:
        """Up to ``limit`` dead letters older than entry ``before``, of ``tenant_id``'s runs (every one when None),
        optionally of one run and one kind; at most ``SCAN_MAX`` entries are looked at per page."""
        items: list[Located] = []
        end = f"({before}" if before else "+"
        scanned = 0
        while scanned < SCAN_MAX:
            count = min(_CHUNK, SCAN_MAX - scanned)
            entries = await self._redis.xrevrange(self._keys.dlq, max=end, min="-", count=count)
            letters = [self._read(entry_id, fields) for entry_id, fields in entries]
            tenants = await self.tenants_of(letters)
            for letter, tenant in zip(letters, tenants, strict=True):
                scanned += 1
                wanted = (run_id is None or letter.run_id == run_id) and (kind is None or letter.kind == kind)
                if not wanted or (tenant_id is not None and tenant != tenant_id):
                    continue
                if len(items) == limit:
                    # One more match exists: the page ends at the item before it.
                    return DeadLetterPage(items, items[-1].letter.id)
                items.append(Located(letter, tenant))
            if len(entries) < count:
                return DeadLetterPage(items, None)
            end = f"({entries[-1][0]}"
        return DeadLetterPage(items, end[1:])

    async def tenants_of(self, letters: Iterable[DeadLetter]) -> list[str | None]:
        """The tenant of each letter's run: from its hot state, else from its ``runs`` row; None when neither."""
        letters = list(letters)
        run_ids = sorted({letter.run_id for letter in letters if letter.run_id is not None})
        found: dict[str, str] = {}
        if run_ids:
            async with self._redis.pipeline(transaction=False) as pipe:
                for run_id in run_ids:
                    pipe.hget(self._keys.run(run_id), "tenant")
                hot = await pipe.execute()
            found = {run_id: tenant for run_id, tenant in zip(run_ids, hot, strict=True) if tenant}
            cold = [run_id for run_id in run_ids if run_id not in found]
            if cold:
                rows = await self._pool.fetch("SELECT id, tenant_id FROM runs WHERE id = ANY($1::text[])", cold)
                found |= {row["id"]: row["tenant_id"] for row in rows}
        return [found.get(letter.run_id) if letter.run_id is not None else None for letter in letters]

    async def replay(self, letter: DeadLetter) -> Replayed:
        """Send ``letter``'s message back unchanged and remove the letter.

        A token goes back to its task stream only while its run is live, its epoch current and its completion not
        yet applied; a signal goes back to its run's completion signals; another entry to the stream it came from.
        The letter is checked, then claimed (removed: of two operators only one gets it), then sent, checked again
        in the same script; the dead-letter stream is in another slot than the target, so no one script does all.
        Raises ``ReplayRefused`` saying why not, or with code ``missing`` when the letter is gone meanwhile.
        """
        target = self._target(letter)
        keys = [target]
        if letter.kind == "token" and letter.run_id is not None:
            keys += [self._keys.run(letter.run_id), self._keys.applied(letter.run_id)]
        args = [letter.kind, letter.payload, letter.token_id or "", letter.epoch or ""]
        verdict, detail = await self._send(keys, "check", args)
        if verdict == "ok":
            if not await self._redis.xdel(self._keys.dlq, letter.id):
                verdict, detail = "missing", ""
            else:
                verdict, detail = await self._send(keys, "send", args)
                if verdict != "ok":
                    # The run moved on between the check and the send: the letter is parked again (a new id).
                    await self._redis.xadd(self._keys.dlq, letter.stored())
        if verdict == "ok":
            return Replayed(target, detail or None)
        raise ReplayRefused(self._refusal(letter, verdict, detail), verdict)

    async def _send(self, keys: list[str], mode: str, args: list[str]) -> tuple[str, str]:
        result = await self._replay(keys=keys, args=[mode, *args])
        return str(result[0]), str(result[1])

    async def discard(self, letter_id: str) -> bool:
        """Remove dead letter ``letter_id``; False when it was not there."""
        return bool(await self._redis.xdel(self._keys.dlq, letter_id))

    def _read(self, entry_id: str, fields: dict[str, str]) -> DeadLetter:
        try:
            return DeadLetter.read(entry_id, fields)
        except (ValidationError, ValueError) as exc:
            # Shown (and discardable) rather than hidden; it names no run, so only a deployment admin sees it.
            reason = f"unreadable dead letter: {str(exc).splitlines()[0]}"
            at_ms = float(entry_id.split("-", 1)[0])
            payload = json.dumps(fields, sort_keys=True)
            return DeadLetter(
                id=entry_id, kind="entry", source=self._keys.dlq, reason=reason, payload=payload, at_ms=at_ms
            )

    def _target(self, letter: DeadLetter) -> str:
        where = f"dead letter {letter.id}"
        if letter.kind == "signal":
            if letter.run_id is not None:
                return self._keys.shard_for(letter.run_id).completion_signals
            return letter.source
        if letter.kind == "token":
            if not self._keys.is_task_stream(letter.source):
                raise ReplayRefused(f"{where}: came from {letter.source!r}, not a task stream", "not_replayable")
            if letter.run_id is None or letter.epoch is None:
                raise ReplayRefused(
                    f"{where}: its token names no run and token id, so whether its run can use it cannot be "
                    "checked; discard it",
                    "not_replayable",
                )
            return letter.source
        if not letter.source.startswith(self._keys.prefix) or letter.source == self._keys.dlq or not letter.source:
            raise ReplayRefused(f"{where}: came from {letter.source!r}, which it cannot go back to", "not_replayable")
        return letter.source

    @staticmethod
    def _refusal(letter: DeadLetter, verdict: str, detail: str) -> str:
        where = f"dead letter {letter.id} (token {letter.token_id} of run {letter.run_id})"
        return {
            "missing": f"dead letter {letter.id} was replayed or discarded meanwhile",
            "no_run": f"{where}: the run has no live state (unknown, or expired)",
            "run_ended": f"{where}: the run has ended ({detail}); resume the run instead",
            "stale_epoch": f"{where}: the run was resumed since (epoch {detail}, token of epoch {letter.epoch})",
            "applied": f"{where}: the node's completion for this token was applied already",
            "empty": f"dead letter {letter.id}: the entry has no fields to send back",
        }.get(verdict, f"dead letter {letter.id}: refused ({verdict})")
