"""A worker process for chaos tests: the built-in steps and the ``scripted`` test type, each execution recorded in
Redis (``tests.support.executions``). Run as ``python -m tests.support.chaos_worker`` with the ``AOB_*`` environment
of ``tests.support.processes.chaos_env``."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from common.clients import open_clients
from common.keys import Keys
from common.lifecycle import serve_until_signalled
from common.logging import configure_logging
from common.runs.cas import Cas
from common.settings import WorkerSettings, load_settings
from tests.support.executions import RecordingHandler, executions_key, redis_sink
from tests.support.scripted import ScriptedHandler
from workers import Worker
from workers.builtin import BuiltinHandler


async def serve(settings: WorkerSettings) -> None:
    configure_logging(settings.log_level, settings.log_json)
    async with AsyncExitStack() as stack:
        redis, pool = await open_clients(stack, settings, "chaos worker")
        sink = redis_sink(redis, executions_key(settings.key_prefix))
        handlers = [RecordingHandler(BuiltinHandler(), sink), RecordingHandler(ScriptedHandler(), sink)]
        worker = Worker(settings, redis, handlers, cas=Cas(redis, Keys(settings.key_prefix), pool))
        await serve_until_signalled(worker)


if __name__ == "__main__":
    asyncio.run(serve(load_settings(WorkerSettings)))
