"""The ``agent`` node: runs the agent program in a runtime, carries out its calls, streams its log, and turns its
result into the node's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr, ValidationError

from common.agent_protocol import SPANS_PREFIX, AgentResult, ProtocolWriter, classify_line, parse_result_line
from common.errors import NodeFailed
from common.keys import Keys
from common.redaction import Redactor
from common.secrets import Keyring, SecretStore
from common.settings import WorkerSettings
from common.tracing import Tracing
from common.workflow.node_configs import AgentConfig
from workers._handler import NodeContext, NodeResult, validated_config
from workers._secret_values import secret_values
from workers.agent._budget import TokenBudget
from workers.agent._calls import CallDispatcher, LogSink
from workers.agent._credentials import AgentCredentials
from workers.agent._logs import NodeLog
from workers.agent._mediator import CallMediator, Charge, PatchAccess
from workers.agent._provider import ChatModel, ModelAccess
from workers.agent._runtime_api import AgentRuntime, RuntimeFailure, RuntimeJob
from workers.agent._runtime_factory import RuntimeFactory
from workers.agent.program import AgentJob, forbid_inspection
from workers.http import HttpFetcher, SsrfGuard, create_http_client

logger = logging.getLogger(__name__)

# Failures worth another attempt under the node's retry policy; every other reason would fail the same way again.
RETRYABLE_ERRORS = frozenset({"provider_error", "crash", "runtime_error"})
_API_TIMEOUT_S = 30.0


@dataclass
class _Execution:
    """What following the program produced."""

    exit_status: int | None = None
    result_line: str | None = None
    timed_out: bool = False


class AgentHandler:
    """Runs ``agent`` nodes, one program execution per attempt."""

    node_type: ClassVar[str] = "agent"
    reports_start: ClassVar[bool] = True

    def __init__(
        self,
        settings: WorkerSettings,
        pool: asyncpg.Pool | None,
        redis: aioredis.Redis,
        *,
        runtimes: RuntimeFactory | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._settings = settings
        self._tracing = tracing
        self._pool = pool
        self._redis = redis
        self._keys = Keys(settings.key_prefix, settings.shards)
        self._runtimes = runtimes or RuntimeFactory(settings)
        self._budget = TokenBudget(redis, self._keys, settings.agent_daily_token_budget)
        self._credentials = AgentCredentials(redis, self._keys)
        self._secrets = SecretStore(pool, Keyring.from_settings(settings)) if pool is not None else None
        self._guard = SsrfGuard.from_settings(settings)
        # The worker holds credentials its agent programs must not read through /proc/<worker>/environ or mem.
        forbid_inspection()

    async def __call__(self, ctx: NodeContext) -> NodeResult:
        config = validated_config(AgentConfig, ctx.config)
        await self._check_budget(ctx.tenant_id)
        # Resolved before a patch token is minted: an unknown secret fails the node with nothing to revoke.
        values = await secret_values(self._secrets, ctx, config.api_key)
        api_key = SecretStr(ctx.secret_slots.fill(config.api_key, values)) if config.api_key else None
        settings = self._settings
        deadline_s = config.timeout_s + settings.agent_timeout_grace_s
        api_token = None
        if config.may_patch:
            api_token = await self._credentials.mint(
                tenant_id=ctx.tenant_id,
                run_id=ctx.run_id,
                node_id=ctx.node_id,
                ttl_s=deadline_s + settings.agent_token_ttl_margin_s,
                patch_types=config.patch_types,
            )
        access = self.model_access(config, api_key)
        secrets = [
            access.api_key.get_secret_value(),
            *(value.get_secret_value() for value in settings.agent_secret_values),
        ]
        redactor = Redactor([*secrets, *([api_token] if api_token else [])])
        payload = self._job_payload(ctx, config, api_token is not None)
        environment = {}
        if ctx.traceparent is not None:
            # The program's spans (model and tool calls) are children of this attempt's span.
            environment = {"TRACEPARENT": ctx.traceparent, **settings.agent_environment()}
        job = RuntimeJob(ctx.run_id, ctx.node_id, ctx.token.attempt, payload, deadline_s, environment)
        runtime = self._runtimes()
        started = time.monotonic()
        log = NodeLog(
            self._redis,
            self._keys,
            run_id=ctx.run_id,
            node_id=ctx.node_id,
            attempt=ctx.token.attempt,
            redactor=redactor,
            cap_bytes=settings.agent_log_cap_bytes,
            ttl_s=settings.agent_log_ttl_s,
        )
        patch = PatchAccess(settings.api_url, ctx.run_id, SecretStr(api_token)) if api_token else None
        charge = Charge(ctx.tenant_id, self._keys.token_charge(ctx.tenant_id, ctx.token.token_id, ctx.run_id))
        try:
            async with log, AsyncExitStack() as stack:
                sink = LogSink(log)
                writer = ProtocolWriter(sink)
                model = ChatModel(access, writer, drain=sink.drain)
                stack.push_async_callback(model.close)
                http_client = await stack.enter_async_context(create_http_client())
                api_client = await stack.enter_async_context(httpx.AsyncClient(timeout=_API_TIMEOUT_S, trust_env=False))
                mediator = CallMediator(
                    model=model,
                    budget=self._budget,
                    charge=charge,
                    max_call_tokens=settings.agent_max_call_tokens,
                    node_max_tokens=config.max_tokens,
                    fetcher=HttpFetcher(http_client, self._guard),
                    max_response_bytes=settings.http_max_response_bytes,
                    api_client=api_client,
                    patch=patch,
                    writer=writer,
                )
                calls = CallDispatcher(mediator, runtime.send, writer, sink.drain)
                stack.push_async_callback(calls.aclose)
                execution = await self._execute(runtime, job, log, calls, ctx.traceparent)
        finally:
            # Shielded: a cancelled node (its run ended) still stops its program and keeps its log.
            await asyncio.shield(self._clean_up(runtime, log, api_token))
        elapsed_s = time.monotonic() - started
        result = self._outcome(execution, config, redactor)
        # The worker's own account wins over what the program says: it made every model call.
        result = result.model_copy(update={"usage": mediator.usage})
        if mediator.refusal is not None:
            result = result.model_copy(update={"status": "failed", "error": mediator.refusal})
        logger.info(
            "agent %s/%s attempt %d: %s in %.2fs, %d steps, %d tokens, %d log lines%s",
            ctx.run_id,
            ctx.node_id,
            ctx.token.attempt,
            result.status,
            elapsed_s,
            result.steps,
            result.usage.total_tokens,
            log.totals.lines,
            " (truncated)" if log.totals.truncated else "",
        )
        if result.status == "succeeded":
            return NodeResult(output=result.output)
        error = result.error
        error_type = error.type if error else "error"
        raise NodeFailed(
            error.message if error else "agent failed without saying why",
            retryable=error_type in RETRYABLE_ERRORS,
            error_type=error_type,
        )

    async def _check_budget(self, tenant_id: str) -> None:
        used = await self._budget.used(tenant_id)
        if used >= self._budget.daily_limit:
            raise NodeFailed(
                f"tenant {tenant_id!r} is over its daily agent token budget: used {used} of"
                f" {self._budget.daily_limit} tokens today (UTC)",
                retryable=False,
                error_type="budget_exceeded",
            )

    def model_access(self, config: AgentConfig, api_key: SecretStr | None = None) -> ModelAccess:
        """The model a node's calls go to and the key they use (the node's stored secret, else the worker's key)."""
        settings = self._settings
        return ModelAccess(
            base_url=settings.llm_base_url,
            api_key=api_key or settings.llm_api_key,
            model=config.model or settings.llm_model,
            max_call_tokens=settings.agent_max_call_tokens,
            max_retries=settings.llm_max_retries,
            breaker_threshold=settings.llm_breaker_threshold,
        )

    def _job_payload(self, ctx: NodeContext, config: AgentConfig, patch: bool) -> bytes:
        settings = self._settings
        job: dict[str, Any] = {
            "v": 1,
            "run_id": ctx.run_id,
            "node_id": ctx.node_id,
            "attempt": ctx.token.attempt,
            "prompt": config.prompt,
            "system": config.system,
            "tools": config.tools,
            "model": config.model or settings.llm_model,
            "max_steps": config.max_steps,
            "max_tokens": config.max_tokens,
            "timeout_s": config.timeout_s,
            "output_schema": config.output_schema,
            "context": {"inputs": ctx.inputs, "upstream": ctx.upstream},
            "patch": patch,
            "max_call_bytes": settings.agent_max_line_bytes,
        }
        try:
            AgentJob.model_validate(job)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise NodeFailed(f"agent job: {problems}", retryable=False, error_type="invalid_config") from None
        # One line: the program reads its job with one readline, then call replies on the same stdin.
        return json.dumps(job, default=str).encode() + b"\n"

    async def _execute(
        self, runtime: AgentRuntime, job: RuntimeJob, log: NodeLog, calls: CallDispatcher, traceparent: str | None
    ) -> _Execution:
        execution = _Execution()
        try:
            lines = await runtime.start(job)
        except RuntimeFailure as exc:
            raise NodeFailed(str(exc), retryable=True, error_type="runtime_error") from exc

        async def follow() -> None:
            async for line in lines:
                kind = classify_line(line)
                if kind == "call":
                    await calls.submit(line)
                    continue
                if kind == "spans":
                    # Only spans of this attempt's trace are exported; without tracing they are dropped.
                    if self._tracing is not None and traceparent is not None:
                        await self._tracing.relay(line[len(SPANS_PREFIX) :].strip(), traceparent.split("-")[1])
                    continue
                await log.add(line)
                if kind == "result":
                    execution.result_line = line
            execution.exit_status = await runtime.wait()

        try:
            async with asyncio.timeout(job.deadline_s):
                await follow()
        except TimeoutError:
            execution.timed_out = True
            await runtime.kill()
        except RuntimeFailure as exc:
            raise NodeFailed(str(exc), retryable=True, error_type="runtime_error") from exc
        return execution

    def _outcome(self, execution: _Execution, config: AgentConfig, redactor: Redactor) -> AgentResult:
        """The program's result, or the failure that stands in for it (timeout, crash, no result)."""
        if execution.timed_out:
            grace_s = self._settings.agent_timeout_grace_s
            return _failed(
                "timeout", f"agent gave no result within timeout_s={config.timeout_s:g}s (+{grace_s:g}s grace); killed"
            )
        status = execution.exit_status
        if status not in (0, 1):
            how = f"killed by signal {-status}" if status is not None and status < 0 else f"exit status {status}"
            return _failed("crash", f"agent process crashed ({how}); see its log")
        if execution.result_line is None:
            return _failed("no_result", f"agent process exited with status {status} without printing a result line")
        try:
            # Only known secret values are taken out: the output is data, not log text.
            return parse_result_line(redactor.redact_values(execution.result_line))
        except ValueError as exc:
            return _failed("no_result", str(exc)[:1000])

    async def _clean_up(self, runtime: AgentRuntime, log: NodeLog, api_token: str | None) -> None:
        try:
            await runtime.close()
        except Exception:
            logger.exception("agent %s/%s: the runtime did not clean up", log.run_id, log.node_id)
        if api_token is not None:
            await self._credentials.revoke(api_token)
        if self._pool is not None:
            try:
                await log.archive(self._pool)
            except Exception:
                logger.exception("agent %s/%s: the log could not be archived", log.run_id, log.node_id)

    def close(self) -> None:
        """Release the runtimes' shared client."""
        self._runtimes.close()


def _failed(error_type: str, message: str) -> AgentResult:
    return AgentResult.model_validate({"status": "failed", "error": {"type": error_type, "message": message}})


@asynccontextmanager
async def agent_handler(
    settings: WorkerSettings, pool: asyncpg.Pool | None, redis: aioredis.Redis, *, tracing: Tracing | None = None
) -> AsyncIterator[AgentHandler]:
    """An ``AgentHandler`` whose runtime client is closed when the block ends."""
    handler = AgentHandler(settings, pool, redis, tracing=tracing)
    try:
        yield handler
    finally:
        with contextlib.suppress(Exception):
            handler.close()
