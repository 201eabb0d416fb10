"""The engine benchmark's skeleton: the bare Redis work of one transition, in a worker and a coordinator process.

Worker: ``XREADGROUP`` a batch of tokens, then push their completion signals and acknowledge them in one
``MULTI``. Coordinator: ``BLMOVE`` one signal into its inflight list and drain more with one script, then one
script call per signal (pipelined) that marks the token applied, stores the node state, moves the run's counter,
queues the next tokens (counting joins) and appends an event. No IR, templates, ledger, Postgres or validation:
what is left is the floor the engine's Redis traffic could reach on this machine.
Run as ``python -m tests.bench._engine_skeleton worker|coordinator REDIS_URL PREFIX``; driven by ``Skeleton``.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from common.redis_client import connect_redis

GROUP = "sk"
DRAIN = """
local moved = {}
for _ = 1, tonumber(ARGV[1]) do
  local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not item then break end
  moved[#moved + 1] = item
end
return moved
"""
# KEYS: applied, state, run, tasks, events, join, done, hops. ARGV: token id, node, worker's end ms, join size of
# the successors (1 = no join), then the successors' tokens and node ids in pairs.
APPLY = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
redis.call('HSET', KEYS[2], ARGV[2], 'succeeded')
local left = redis.call('HINCRBY', KEYS[3], 'counter', -1)
local need = tonumber(ARGV[4])
for i = 5, #ARGV, 2 do
  if need <= 1 or redis.call('HINCRBY', KEYS[6], ARGV[i + 1], 1) == need then
    redis.call('XADD', KEYS[4], '*', 't', ARGV[i])
    left = redis.call('HINCRBY', KEYS[3], 'counter', 1)
    redis.call('RPUSH', KEYS[8], now - tonumber(ARGV[3]))
  end
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', 100000, '*', 'e', ARGV[2] .. ' succeeded')
if left == 0 then redis.call('XADD', KEYS[7], '*', 'r', KEYS[3]) end
return 1
"""


@dataclass(frozen=True)
class SkeletonKeys:
    prefix: str

    def __getattr__(self, name: str) -> str:
        return f"{self.prefix}sk:{name}"

    def of(self, kind: str, run: str) -> str:
        return f"{self.prefix}sk:{kind}:{run}"


def successors(node: str, shape: str) -> tuple[list[str], int]:
    """The nodes after ``node`` in a run of ``shape`` (``c<n>`` chain, ``f<w>`` 1 -> w -> 1), and their join size."""
    size = int(shape[1:])
    if shape[0] == "c":
        step = int(node)
        return ([str(step + 1)] if step + 1 < size else []), 1
    if node == "s":
        return [f"f{i}" for i in range(size)], 1
    return ([], 1) if node == "k" else (["k"], size)


def entry_nodes(shape: str) -> list[str]:
    return ["0"] if shape[0] == "c" else ["s"]


async def serve_worker(redis: aioredis.Redis, keys: SkeletonKeys) -> None:
    while True:
        reply = await redis.xreadgroup(GROUP, "w", {keys.tasks: ">"}, count=64, block=1000)
        for _, entries in reply or ():
            ids = [entry_id for entry_id, _ in entries]
            ended = f"{time.time() * 1000:.3f}"
            async with redis.pipeline(transaction=True) as pipe:
                pipe.rpush(keys.signals, *(f"{fields['t']}|{ended}" for _, fields in entries))
                pipe.xack(keys.tasks, GROUP, *ids)
                pipe.xdel(keys.tasks, *ids)
                await pipe.execute()


async def serve_coordinator(redis: aioredis.Redis, keys: SkeletonKeys) -> None:
    drain = redis.register_script(DRAIN)
    apply = redis.register_script(APPLY)
    while True:
        first = await redis.blmove(keys.signals, keys.inflight, 1, "LEFT", "RIGHT")
        if first is None:
            continue
        batch = [first, *await drain(keys=[keys.signals, keys.inflight], args=[199])]
        async with redis.pipeline(transaction=False) as pipe:
            for signal in batch:
                run, node, shape, ended = signal.split("|")
                nexts, need = successors(node, shape)
                args: list[Any] = [f"{run}|{node}", node, ended, need]
                for n in nexts:
                    args += [f"{run}|{n}|{shape}", n]
                run_keys = [keys.of(kind, run) for kind in ("applied", "state", "run")]
                extra = [keys.tasks, keys.of("events", run), keys.of("join", run), keys.done, keys.hops]
                await apply(keys=run_keys + extra, args=args, client=pipe)
            pipe.delete(keys.inflight)
            await pipe.execute()


async def start(redis: aioredis.Redis, keys: SkeletonKeys, runs: list[str], shape: str) -> None:
    """Start ``runs`` of ``shape`` in one pipeline: a counter and the entry tokens each."""
    async with redis.pipeline(transaction=False) as pipe:
        for run in runs:
            entries = entry_nodes(shape)
            pipe.hset(keys.of("run", run), "counter", len(entries))
            for node in entries:
                pipe.xadd(keys.tasks, {"t": f"{run}|{node}|{shape}"})
        await pipe.execute()


async def _serve(role: str, url: str, prefix: str) -> None:
    redis = connect_redis(url)
    keys = SkeletonKeys(prefix)
    if role == "worker":
        await serve_worker(redis, keys)
    else:
        await serve_coordinator(redis, keys)


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], sys.argv[2], sys.argv[3]))
