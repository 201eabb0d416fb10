"""Hot-state retention: once Postgres holds an ended run, its Redis keys expire after ``hot_retention_s``.

Reads of an expired run fall back to Postgres (the run view, events, logs and outputs already do). The expiry
is set by a script that checks, atomically, that the run is still ended: a resume in between (which removes the
expiry again) is never undone by a late recorder.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable

import redis.asyncio as aioredis

from common.keys import Keys, KeyTemplate
from common.redis_client import call_script_many

# KEYS: run, ir, applied, nodes, ctx, join, child runs. ARGV: seconds, control-state key template {head, tail}
# (head .. node id .. tail). Returns 1 when the keys got their expiry, 0 when the run is not ended (or gone).
_EXPIRE_ENDED = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'succeeded' and status ~= 'failed' and status ~= 'cancelled' and status ~= 'timed_out' then
  return 0
end
local ttl = tonumber(ARGV[1])
local control = cjson.decode(ARGV[2])
for _, node_id in ipairs(redis.call('HKEYS', KEYS[4])) do
  redis.call('EXPIRE', control[1] .. node_id .. control[2], ttl)
end
for i = 1, #KEYS do redis.call('EXPIRE', KEYS[i], ttl) end
return 1
"""


def hot_keys(keys: Keys, run_id: str) -> list[str]:
    """The run's own hot keys (not its control states, which are per node): what retention expires."""
    return [
        keys.run(run_id),
        keys.ir(run_id),
        keys.applied(run_id),
        keys.nodes(run_id),
        keys.ctx(run_id),
        keys.join(run_id),
        keys.child_runs(run_id),
    ]


class HotRetention:
    """Gives the hot keys of ended runs their expiry."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, retention_s: int) -> None:
        self._redis = redis
        self._keys = keys
        self._retention_s = retention_s
        self._expire = redis.register_script(_EXPIRE_ENDED)

    async def expire_ended(self, run_ids: Iterable[str]) -> None:
        """Set the expiry on every given run that is still ended (one script call per run, pipelined)."""
        calls = []
        for run_id in run_ids:
            control = KeyTemplate.of(functools.partial(self._keys.control_state, run_id)).for_lua()
            calls.append((hot_keys(self._keys, run_id), [self._retention_s, json.dumps(control)]))
        await call_script_many(self._redis, self._expire, calls)
