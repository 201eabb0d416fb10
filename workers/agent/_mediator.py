"""The worker's side of call mediation: it carries out the agent program's model, HTTP and patch calls itself.

The program holds no credential and no network; here the model key is used, the SSRF guard applied to every
request, the run-scoped patch token kept, and each model call reserved against the tenant's token budget first.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from common.agent_protocol import (
    AgentError,
    CallReply,
    CallRequest,
    HttpCall,
    HttpReply,
    ModelCall,
    PatchCall,
    PatchReply,
    ProtocolWriter,
    Usage,
)
from common.errors import AobError
from common.redaction import safe_url
from workers.agent._budget import BudgetExceeded, TokenBudget
from workers.agent._provider import ChatModel, ProviderFailed
from workers.http import HttpFetcher

logger = logging.getLogger(__name__)

# Per-message framing the provider adds to the text; a generous flat figure keeps the estimate an upper bound.
_TOKENS_PER_MESSAGE = 8
# Tokenisers give at least a byte per token for nearly all text; three is a cautious average that stays above it.
_BYTES_PER_TOKEN = 3


def prompt_tokens_estimate(call: ModelCall) -> int:
    """A cautious upper estimate of the prompt's tokens, from its size (no tokeniser for every model here)."""
    size = len(json.dumps([call.messages, call.tools], ensure_ascii=False).encode())
    return size // _BYTES_PER_TOKEN + _TOKENS_PER_MESSAGE * len(call.messages)


@dataclass(frozen=True)
class PatchAccess:
    """The orchestrator API and this execution's run-scoped token; only the worker ever holds the token."""

    api_url: str
    run_id: str
    token: SecretStr


@dataclass(frozen=True)
class Charge:
    """Whose budget a call is charged to: the tenant, and the execution's ledger key (one charge per execution)."""

    tenant_id: str
    charge_key: str


class CallMediator:
    """Answers one execution's call requests; ``usage`` and ``refusal`` are the worker's own account of them."""

    def __init__(
        self,
        *,
        model: ChatModel,
        budget: TokenBudget,
        charge: Charge,
        max_call_tokens: int,
        node_max_tokens: int,
        fetcher: HttpFetcher,
        max_response_bytes: int,
        api_client: httpx.AsyncClient,
        patch: PatchAccess | None,
        writer: ProtocolWriter,
    ) -> None:
        self._model = model
        self._budget = budget
        self._charge = charge
        self._max_call_tokens = max_call_tokens
        self._node_max_tokens = node_max_tokens
        self._fetcher = fetcher
        self._max_response_bytes = max_response_bytes
        self._api_client = api_client
        self._patch = patch
        self._writer = writer
        self.usage = Usage()
        self.refusal: AgentError | None = None
        """The first budget refusal: it decides the node's failure whatever the program then reports."""

    async def answer(self, request: CallRequest) -> CallReply:
        """Carry out ``request``; a refusal or failure becomes the reply's ``error``, never an exception."""
        call = request.call
        try:
            if isinstance(call, ModelCall):
                result: dict[str, Any] = await self._model_call(call)
            elif isinstance(call, HttpCall):
                result = (await self._http_call(call)).model_dump()
            else:
                result = (await self._patch_call(call)).model_dump()
        except _Refused as exc:
            self._writer.log("WARNING", "call refused", kind=call.kind, type=exc.error.type, error=exc.error.message)
            return CallReply(id=request.id, error=exc.error)
        except AobError as exc:
            error_type = getattr(exc, "error_type", None) or exc.code
            return CallReply(id=request.id, error=AgentError(type=error_type, message=exc.message))
        return CallReply(id=request.id, result=result)

    async def _model_call(self, call: ModelCall) -> dict[str, Any]:
        if self.usage.total_tokens >= self._node_max_tokens:
            raise _Refused("max_tokens", f"token budget exceeded: {self.usage.total_tokens} >= {self._node_max_tokens}")
        wanted = prompt_tokens_estimate(call) + self._max_call_tokens
        try:
            reservation = await self._budget.reserve(self._charge.tenant_id, wanted)
        except BudgetExceeded as exc:
            self.refusal = self.refusal or AgentError(type="budget_exceeded", message=str(exc))
            raise _Refused("budget_exceeded", str(exc)) from None
        # A call that failed, or whose usage went unreported, may still have cost tokens: it is charged its reservation.
        spent = Usage(total_tokens=wanted)
        try:
            reply = await self._model.turn(call.messages, call.tools)
            if reply.usage_reported:
                spent = reply.usage
            return reply.model_dump()
        except ProviderFailed as exc:
            raise CallFailed(exc.error_type, exc.message) from None
        finally:
            self.usage = self.usage.add(spent)
            await self._budget.settle(
                reservation, delivery_tokens=self.usage.total_tokens, charge_key=self._charge.charge_key
            )

    async def _http_call(self, call: HttpCall) -> HttpReply:
        body: dict[str, Any] = {}
        if call.body is not None:
            body = {"content": call.body} if call.body_format == "text" else {"json": call.body}
        if "content" in body and not isinstance(body["content"], str):
            raise _Refused("invalid_call", "http: a text body must be a string")
        response = await self._fetcher.request(
            call.method, call.url, headers=call.headers, max_response_bytes=self._max_response_bytes, **body
        )
        return HttpReply(
            status=response.status,
            url=safe_url(response.url),
            content_type=response.headers.get("content-type"),
            body=response.body(),
        )

    async def _patch_call(self, call: PatchCall) -> PatchReply:
        access = self._patch
        if access is None:
            raise _Refused("not_allowed", "patch_workflow: this node may not patch its workflow")
        url = f"{access.api_url.rstrip('/')}/api/v1/runs/{access.run_id}/patch"
        try:
            response = await self._api_client.post(
                url,
                json={"ops": call.ops, "reason": call.reason},
                headers={"authorization": f"Bearer {access.token.get_secret_value()}"},
            )
        except httpx.HTTPError as exc:
            raise CallFailed("api_unreachable", f"patch_workflow: API unreachable ({type(exc).__name__})") from None
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:2000]
        return PatchReply(status=response.status_code, body=body)


class CallFailed(AobError):
    """A failed call whose reason the program reports under ``error_type`` (``provider_error``, ...)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


class _Refused(Exception):
    """The worker will not carry out a call (budget, limits, a tool the node does not allow)."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error = AgentError(type=error_type, message=message)
