"""A process serving the ops endpoint around a service that drains slowly on SIGTERM, as ``aob coordinator`` and
``aob worker`` do: ``python -m tests.support.ops_child PORT REDIS_URL DATABASE_URL``."""

from __future__ import annotations

import asyncio
import sys

from common.db import create_pool
from common.lifecycle import serve_until_signalled
from common.metrics import Metrics
from common.ops_endpoint import ops_endpoint
from common.ops_settings import OpsEndpointFields
from common.redis_client import connect_redis


class DrainingService:
    """Runs until shut down, then says so on stdout and drains until its stdin closes (the test decides when)."""

    def __init__(self) -> None:
        self._stopping = asyncio.Event()

    async def run(self) -> None:
        print("serving", flush=True)
        await self._stopping.wait()
        print("draining", flush=True)
        await asyncio.to_thread(sys.stdin.read)

    async def shutdown(self) -> None:
        self._stopping.set()


async def main(port: int, redis_url: str, database_url: str) -> None:
    redis = connect_redis(redis_url)
    pool = await create_pool(database_url, "public")
    metrics = Metrics()
    metrics.counter("aob_child_total", "a metric of the child").inc()
    try:
        async with ops_endpoint(OpsEndpointFields(ops_port=port), redis, pool, metrics, "child"):
            await serve_until_signalled(DrainingService())
    finally:
        await pool.close()
        await redis.aclose()
    print("stopped", flush=True)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
