"""Entry point: ``python -m workers.agent.program`` reads its job (the first stdin line), then runs the agent with
every model and tool call carried out by the worker (call lines on stdout, replies on stdin)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import traceback

from pydantic import ValidationError

from common.agent_protocol import AgentError, AgentResult, ProtocolWriter
from common.errors import AobError
from common.tracing import AttributeValue, Tracing, start_program_tracing, traced
from workers.agent.program._channel import RawLines, WorkerChannel
from workers.agent.program._hardening import forbid_inspection
from workers.agent.program._job import AgentJob
from workers.agent.program._loop import run_agent
from workers.agent.program._tools import ToolContext, default_registry

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_CRASHED = 2


def _invalid_job(message: str) -> AgentResult:
    return AgentResult(status="failed", error=AgentError(type="invalid_job", message=message))


def parse_job(raw: bytes) -> AgentJob:
    """Parse the job; raise ``ValueError`` listing each problem by path, never echoing values (they hold secrets)."""
    try:
        return AgentJob.model_validate_json(raw)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, error['loc'])) or '(job)'}: {error['msg']}" for error in exc.errors()]
        raise ValueError("invalid job: " + "; ".join(problems)) from None


async def run_job(
    job: AgentJob,
    writer: ProtocolWriter,
    stdin: RawLines,
    tracing: Tracing | None = None,
    traceparent: str | None = None,
) -> AgentResult:
    """Wire the tools and the channel to the worker for ``job`` and run the agent (in a span of ``traceparent``'s
    trace when ``tracing`` is given)."""
    names = job.tools
    if names is None and not job.patch:
        names = [name for name in default_registry().names if name != "patch_workflow"]
    try:
        tools = default_registry().select(names)
    except AobError as exc:
        return _invalid_job(exc.message)
    writer.log("INFO", "agent started", run_id=job.run_id, node_id=job.node_id, model=job.model, tools=tools.names)
    channel = WorkerChannel(writer, max_call_bytes=job.max_call_bytes)
    channel.listen(stdin)
    attributes: dict[str, AttributeValue] = {
        "aob.run_id": job.run_id,
        "aob.node_id": job.node_id,
        "aob.attempt": job.attempt,
    }
    with traced(tracing, "aob.agent", parent=traceparent, attributes=attributes) as span:
        result = await run_agent(
            job, channel, tools, ToolContext(job=job, worker=channel, writer=writer, tracing=tracing)
        )
        if span is not None:
            span.set_attribute("aob.steps", result.steps)
            if result.error is not None:
                span.fail(f"{result.error.type}: {result.error.message}")
    return result


def main() -> int:
    """Run one job; exit 0 when it succeeded, 1 when it failed (the result line says why), 2 on a crash."""
    # Library logs go to stderr so stdout carries the protocol only.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # Another agent running as the same user must not read this one's stdin (its call replies) through /proc.
    forbid_inspection()
    writer = ProtocolWriter(sys.stdout)
    # Set by the worker when tracing is on: this program's spans join the node attempt's trace.
    traceparent = os.environ.get("TRACEPARENT")
    tracing = start_program_tracing(traceparent, writer.spans)
    try:
        try:
            stdin = RawLines(sys.stdin.fileno())
            job = parse_job(stdin.readline())
        except ValueError as exc:
            result = _invalid_job(str(exc))
        else:
            result = asyncio.run(run_job(job, writer, stdin, tracing, traceparent))
        writer.result(result)
    except Exception:
        writer.log("CRITICAL", "agent program crashed", exc=traceback.format_exc(limit=20))
        return EXIT_CRASHED
    finally:
        if tracing is not None:
            tracing.shutdown()
    return EXIT_SUCCEEDED if result.status == "succeeded" else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
