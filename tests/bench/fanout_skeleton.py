"""The fanout benchmark's skeleton (not a test): the least a WebSocket broadcaster of Redis streams can do.

Run by ``tests/bench/fanout.py`` as ``python -m tests.bench.fanout_skeleton <config json>``. One process: a
``websockets`` server whose clients connect to ``/ws/runs/<run id>``, and one task reading every run's stream with
``XREAD BLOCK`` and handing each entry, framed as the fanout frames it (``{"id", ...stored event}``), to
``websockets.broadcast`` for the run's connections. No auth, no history, no resume, no backpressure, no
compression: the I/O the fanout cannot avoid, for the benchmark's ratio. Prints ``ready`` once it listens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from redis.asyncio import Redis
from websockets.asyncio.server import ServerConnection, broadcast, serve

_PATH = "/ws/runs/"


async def main(config: dict[str, Any]) -> None:
    redis = Redis.from_url(config["redis_url"], decode_responses=True)
    streams: dict[str, str] = config["streams"]  # stream key -> run id
    watchers: dict[str, set[ServerConnection]] = {run_id: set() for run_id in streams.values()}

    async def handler(connection: ServerConnection) -> None:
        path = connection.request.path if connection.request is not None else ""
        group = watchers.get(path.removeprefix(_PATH).partition("?")[0])
        if group is None:
            await connection.close(4404)
            return
        group.add(connection)
        try:
            await connection.wait_closed()
        finally:
            group.discard(connection)

    async def read() -> None:
        cursors = {stream: "0-0" for stream in streams}  # fresh streams: everything is new
        while True:
            reply = await redis.xread(cursors, count=500, block=1000)
            for stream, entries in reply or ():
                for entry_id, fields in entries:
                    frame = json.dumps({"id": entry_id, **json.loads(fields["e"])})
                    broadcast(watchers[streams[stream]], frame)
                cursors[stream] = entries[-1][0]

    async with serve(handler, config["host"], config["port"], compression=None, ping_interval=None):
        reader = asyncio.create_task(read())
        print("ready", flush=True)
        await reader


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
