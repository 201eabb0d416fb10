"""Entry point: ``python -m workers.agent.program`` reads one job from stdin and prints the protocol on stdout."""

from __future__ import annotations

import asyncio
import logging
import sys
import traceback

import httpx
from pydantic import ValidationError

from common.agent_protocol import AgentError, AgentResult, ProtocolWriter
from common.errors import AobError
from workers.agent.program._job import AgentJob
from workers.agent.program._loop import run_agent
from workers.agent.program._provider import ChatModel
from workers.agent.program._tools import ToolContext, default_registry
from workers.http import HttpFetcher, SsrfGuard, create_http_client

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_CRASHED = 2
_API_TIMEOUT_S = 30.0


def _invalid_job(message: str) -> AgentResult:
    return AgentResult(status="failed", error=AgentError(type="invalid_job", message=message))


def parse_job(raw: bytes) -> AgentJob:
    """Parse the job; raise ``ValueError`` listing each problem by path, never echoing values (they hold secrets)."""
    try:
        return AgentJob.model_validate_json(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, error['loc'])) or '(job)'}: {error['msg']}" for error in exc.errors()]
        raise ValueError("invalid job: " + "; ".join(problems)) from None


async def run_job(job: AgentJob, writer: ProtocolWriter) -> AgentResult:
    """Wire the model, the guarded fetcher and the tools for ``job`` and run the agent."""
    names = job.tools
    if names is None and job.api is None:
        names = [name for name in default_registry().names if name != "patch_workflow"]
    try:
        tools = default_registry().select(names)
        guard = SsrfGuard(
            allowlist=job.http.allowlist,
            deny_paths=job.http.deny_paths,
            max_response_bytes=job.http.max_response_bytes,
        )
    except AobError as exc:
        return _invalid_job(exc.message)
    writer.log("INFO", "agent started", run_id=job.run_id, node_id=job.node_id, model=job.model, tools=tools.names)
    model = ChatModel(job.llm, job.model, writer)
    try:
        async with (
            create_http_client() as http_client,
            httpx.AsyncClient(timeout=_API_TIMEOUT_S, trust_env=False) as api_client,
        ):
            ctx = ToolContext(job=job, fetcher=HttpFetcher(http_client, guard), writer=writer, api_client=api_client)
            return await run_agent(job, model, tools, ctx)
    finally:
        await model.close()


def main() -> int:
    """Run one job; exit 0 when it succeeded, 1 when it failed (the result line says why), 2 on a crash."""
    # Library logs go to stderr so stdout carries the protocol only.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    writer = ProtocolWriter(sys.stdout)
    try:
        try:
            job = parse_job(sys.stdin.buffer.read())
        except ValueError as exc:
            result = _invalid_job(str(exc))
        else:
            result = asyncio.run(run_job(job, writer))
        writer.result(result)
    except Exception:
        writer.log("CRITICAL", "agent program crashed", exc=traceback.format_exc(limit=20))
        return EXIT_CRASHED
    return EXIT_SUCCEEDED if result.status == "succeeded" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
