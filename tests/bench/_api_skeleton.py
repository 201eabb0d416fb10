"""The API benchmark's skeleton: a bare FastAPI route doing the I/O a submission cannot avoid, one Postgres insert
and one Redis script call, served exactly as the API is (uvicorn, uvloop, httptools, the same number of processes).

Not a test. ``python -m tests.bench._api_skeleton --port P --workers N`` with AOB_REDIS_URL, AOB_DATABASE_URL,
AOB_DB_SCHEMA and AOB_KEY_PREFIX set; the schema must have the ``runs`` table (migrated).
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import uvicorn
from fastapi import FastAPI, Request, Response

from common.db import create_pool
from common.redis_client import connect_redis

# About what the start script does for a run with one entry node: a hash, a task-stream entry, an event.
_START = """
redis.call('HSET', KEYS[1], 'status', 'running', 'inputs', ARGV[1])
redis.call('XADD', KEYS[2], '*', 't', ARGV[2])
redis.call('XADD', KEYS[3], '*', 'e', ARGV[2])
return 1
"""


def create() -> FastAPI:
    """The skeleton app (a factory, so each uvicorn worker process builds its own clients)."""
    prefix = os.environ["AOB_KEY_PREFIX"] + "skeleton:"

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect_redis(os.environ["AOB_REDIS_URL"])
        pool = await create_pool(os.environ["AOB_DATABASE_URL"], os.environ["AOB_DB_SCHEMA"], reset_session=False)
        app.state.clients = (pool, redis.register_script(_START))
        yield
        await pool.close()
        await redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/api/v1/runs")
    async def submit(request: Request) -> Response:
        pool, start = request.app.state.clients
        body: dict[str, Any] = orjson.loads(await request.body())
        run_id = uuid.uuid4().hex
        created_at = await pool.fetchval(
            "INSERT INTO runs (id, tenant_id, workflow_name, status, inputs) VALUES ($1, 'skeleton', $2, 'queued', $3)"
            " RETURNING created_at",
            run_id,
            body["workflow_id"],
            body.get("inputs", {}),
        )
        token = orjson.dumps({"run_id": run_id, "node_id": "n0"})
        keys = [f"{prefix}run:{run_id}", f"{prefix}tasks", f"{prefix}events:{run_id}"]
        await start(keys=keys, args=[orjson.dumps(body.get("inputs", {})), token])
        answer = {"id": run_id, "status": "running", "created_at": created_at.isoformat()}
        return Response(orjson.dumps(answer), status_code=201, media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "tests.bench._api_skeleton:create",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
