"""The contract between the worker runtime and one node type's handler."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeVar

import redis.asyncio as aioredis
from pydantic import BaseModel, ValidationError

from common.errors import NodeFailed
from common.keys import Keys
from common.runs.messages import Token
from common.secrets import SecretSlots
from common.workflow.ir import IrNode


@dataclass
class NodeContext:
    """Everything a handler may use for one execution: the token, resolved config, run inputs.

    ``upstream`` holds the outputs of the node's predecessors and of the nodes its config refers to;
    ``secret_slots`` fills the config's ``{{ secrets.NAME }}`` references (left as placeholders by templates).
    """

    token: Token
    node: IrNode
    config: dict[str, Any]
    inputs: dict[str, Any]
    upstream: dict[str, Any]
    predecessors: list[str]
    tenant_id: str
    started_by: str | None
    redis: aioredis.Redis
    keys: Keys
    worker_id: str
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    secret_slots: SecretSlots = field(default_factory=SecretSlots)
    # The W3C trace context of this attempt's span (None when tracing is off): what agent programs and outgoing
    # requests carry.
    traceparent: str | None = None

    @property
    def run_id(self) -> str:
        return self.token.run_id

    @property
    def node_id(self) -> str:
        return self.token.node_id


@dataclass(frozen=True)
class NodeResult:
    """A handler's outcome. ``complete=False`` means the node completes later (asynchronous completion)."""

    output: Any = None
    branch: str | None = None
    complete: bool = True


class NodeHandler(Protocol):
    """Executes nodes of one type; raise ``common.errors.NodeFailed`` to fail the attempt."""

    node_type: ClassVar[str]
    # Long-running handlers announce the start so users see the node running; instant ones skip the trip.
    reports_start: ClassVar[bool]

    async def __call__(self, ctx: NodeContext) -> NodeResult: ...


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def validated_config(model: type[ConfigT], config: dict[str, Any]) -> ConfigT:
    """``config`` (templates resolved) as ``model``; a non-retryable ``NodeFailed`` naming each bad field."""
    try:
        return model.model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(
            f"config.{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" if error["loc"] else error["msg"]
            for error in exc.errors()
        )
        raise NodeFailed(problems, retryable=False, error_type="invalid_config") from None
