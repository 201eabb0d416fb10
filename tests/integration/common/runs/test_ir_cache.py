"""IrCache: runs storing the same IR text share one parsed shape; a patched IR gets its own."""

from __future__ import annotations

import redis.asyncio as aioredis

from common.keys import Keys
from common.runs.ir_cache import IrCache
from common.workflow.compiler import compile_definition


async def test_runs_of_one_ir_text_share_its_parsed_shape(redis: aioredis.Redis, keys: Keys) -> None:
    ir = compile_definition({"name": "w", "nodes": [{"id": "a", "type": "noop"}]}).ir
    patched = ir.model_copy(update={"version": 2})
    await redis.set(keys.ir("r1"), ir.model_dump_json())
    await redis.set(keys.ir("r2"), ir.model_dump_json())
    await redis.set(keys.ir("r3"), patched.model_dump_json())
    await redis.hset(keys.run("r1"), "inputs", '{"x": 1}')
    cache = IrCache(redis, keys)

    await cache.prefetch({"r1", "r2", "r3"})
    r1, r2, r3 = cache.peek("r1"), cache.peek("r2"), cache.peek("r3")

    assert r1 is not None and r2 is not None and r3 is not None
    assert r1.shape is r2.shape and r3.shape is not r1.shape and r3.version == 2
    # Inputs belong to the run, not to the shape.
    assert (r1.inputs, r2.inputs) == ({"x": 1}, {})
