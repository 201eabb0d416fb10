"""Running a long-lived component until SIGTERM/SIGINT, then shutting it down in order."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Protocol

logger = logging.getLogger(__name__)


class Service(Protocol):
    """The contract of every long-lived component: ``run()`` until an idempotent ``shutdown()``."""

    async def run(self) -> None: ...

    async def shutdown(self) -> None: ...


async def serve_until_signalled(*services: Service) -> None:
    """Run ``services`` together; the first SIGTERM/SIGINT asks each to shut down, and this returns when all did."""
    loop = asyncio.get_running_loop()
    shutdowns: set[asyncio.Task[None]] = set()

    def request_shutdown(signame: str) -> None:
        logger.info("%s received: shutting down", signame)
        for service in services:
            task = loop.create_task(service.shutdown())
            shutdowns.add(task)
            task.add_done_callback(shutdowns.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_shutdown, sig.name)
    try:
        await asyncio.gather(*(service.run() for service in services))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
