"""The agent program under a real worker side, without the engine: its calls answered by ``CallMediator`` (the real
provider client, SSRF guard, patch access and token budget), its output and the worker's log lines collected."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from common.agent_protocol import ProtocolWriter, classify_line
from common.keys import Keys
from common.settings import WorkerSettings
from workers.agent._budget import TokenBudget
from workers.agent._calls import CallDispatcher
from workers.agent._mediator import CallMediator, Charge, PatchAccess
from workers.agent._provider import ChatModel, ModelAccess
from workers.agent._runtime_api import RuntimeJob
from workers.agent._runtime_process import ProcessRuntime
from workers.http import HttpFetcher, SsrfGuard, create_http_client


@dataclass
class WorkerSide:
    """What the worker gives one program run: the provider, the guard's allowlist, the API, the budget."""

    llm_url: str
    llm_key: str
    max_retries: int = 4
    allowlist: Sequence[str] = ()
    api_url: str | None = None
    api_token: str | None = None
    daily_budget: int = 1_000_000
    lines: list[str] = field(default_factory=list)
    partial: str = ""

    def write(self, text: str, /) -> int:
        """Kept as a stream: a streamed piece of a line joins the rest of it."""
        *done, self.partial = (self.partial + text).split("\n")
        self.lines.extend(done)
        return len(text)

    def flush(self) -> None:
        """Lines are kept as they are written."""


async def _nothing() -> None:
    return None


async def run_with_worker(
    job: dict[str, Any], worker: WorkerSide, redis: aioredis.Redis, keys: Keys, *, timeout_s: float = 30
) -> tuple[int, list[str]]:
    """Run the real program with ``job``; returns its exit status and every output line (the worker's model text
    and provider logs included), call lines left out."""
    writer = ProtocolWriter(worker)
    access = ModelAccess(
        base_url=worker.llm_url,
        api_key=SecretStr(worker.llm_key),
        model=job["model"],
        max_call_tokens=4096,
        max_retries=worker.max_retries,
        backoff_base_s=0.05,
        backoff_max_s=0.2,
    )
    model = ChatModel(access, writer, drain=_nothing)
    patch = None
    if worker.api_url is not None and worker.api_token is not None:
        patch = PatchAccess(worker.api_url, job["run_id"], SecretStr(worker.api_token))
    job = job | {"patch": patch is not None}
    runtime = ProcessRuntime(WorkerSettings())
    async with create_http_client() as http_client, httpx.AsyncClient(trust_env=False) as api_client:
        mediator = CallMediator(
            model=model,
            budget=TokenBudget(redis, keys, worker.daily_budget),
            charge=Charge("tenant-test", keys.token_charge("tenant-test", uuid.uuid4().hex, job["run_id"])),
            max_call_tokens=4096,
            node_max_tokens=job.get("max_tokens", 100_000),
            fetcher=HttpFetcher(http_client, SsrfGuard(allowlist=worker.allowlist)),
            max_response_bytes=1024 * 1024,
            api_client=api_client,
            patch=patch,
            writer=writer,
        )
        calls = CallDispatcher(mediator, runtime.send, writer, _nothing)
        try:
            payload = json.dumps(job).encode() + b"\n"
            async for line in await runtime.start(RuntimeJob(job["run_id"], job["node_id"], 1, payload, timeout_s)):
                if classify_line(line) == "call":
                    await calls.submit(line)
                else:
                    worker.lines.append(line)
            code = await runtime.wait()
        finally:
            await calls.aclose()
            await runtime.close()
            await model.close()
    return code, worker.lines
